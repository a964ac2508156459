// The Python module rgemma._rgemma (pybind11): api/runtime.h and the
// server's OpenAI request/response layer, bound as they are. The package
// rgemma (python/rgemma/__init__.py) adds the Pythonic surface on top.
//
// Every call that computes releases the GIL and runs on a thread of its own
// while the calling thread waits, checking for signals every 50 ms, so Ctrl-C
// interrupts a generation (KeyboardInterrupt; the engine request is
// cancelled). rg::Error and the server's ApiError become rgemma.RgemmaError
// (a ValueError) carrying the one-line message.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "api/runtime.h"
#include "core/error.h"
#include "server/chat_completions.h"
#include "server/completions.h"
#include "server/job.h"

namespace py = pybind11;
using rg::api::Generated;
using rg::api::GenerateOptions;
using rg::api::Model;
using rg::api::ModelOptions;
using rg::api::Sequence;

namespace {

py::object g_error_type;  // rgemma.RgemmaError

// Runs fn(cancel) on a worker thread without the GIL; Ctrl-C in the caller
// sets *cancel and re-raises once fn has returned.
template <class T>
T Interruptible(const std::function<T(const std::atomic<bool>*)>& fn) {
  std::atomic<bool> cancel{false};
  std::optional<T> result;
  std::exception_ptr err;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread worker([&] {
    try {
      result.emplace(fn(&cancel));
    } catch (...) {
      err = std::current_exception();
    }
    std::lock_guard<std::mutex> lk(mu);
    done = true;
    cv.notify_all();
  });
  bool interrupted = false;
  for (;;) {
    {
      py::gil_scoped_release nogil;
      std::unique_lock<std::mutex> lk(mu);
      if (cv.wait_for(lk, std::chrono::milliseconds(50), [&] { return done; })) break;
    }
    if (PyErr_CheckSignals() != 0) {
      interrupted = true;
      cancel = true;
      break;
    }
  }
  {
    py::gil_scoped_release nogil;
    worker.join();
  }
  if (interrupted) throw py::error_already_set();
  if (err) std::rethrow_exception(err);
  return std::move(*result);
}

std::vector<int32_t> Ids(const py::iterable& ids, const char* what) {
  std::vector<int32_t> out;
  for (py::handle h : ids) {
    if (!py::isinstance<py::int_>(h)) throw rg::Error(std::string(what) + ": expected token ids (integers)");
    const long long v = h.cast<long long>();
    if (v < INT32_MIN || v > INT32_MAX) throw rg::Error(rg::StrCat(what, ": token id ", v, " is out of range"));
    out.push_back(int32_t(v));
  }
  return out;
}

rg::SamplingParams Sampling(float temperature, int top_k, float top_p, float min_p, float repeat_penalty,
                            int repeat_last_n, float presence_penalty, float frequency_penalty, uint64_t seed) {
  rg::SamplingParams s;
  s.temperature = temperature;
  s.top_k = top_k;
  s.top_p = top_p;
  s.min_p = min_p;
  s.repeat_penalty = repeat_penalty;
  s.repeat_last_n = repeat_last_n;
  s.presence_penalty = presence_penalty;
  s.frequency_penalty = frequency_penalty;
  s.seed = seed;
  s.Validate();
  return s;
}

rg::server::ModelInfo InfoOf(const Model& m) {
  rg::server::ModelInfo info;
  info.id = std::filesystem::path(m.dir()).filename().string();
  if (info.id.empty()) info.id = "rgemma";
  info.config = &m.config();
  info.tokenizer = m.tokenizer();
  return info;
}

// An OpenAI request in flight through the server's Job (the same JSON the
// HTTP server answers with).
std::shared_ptr<rg::server::Job> StartJob(Model& m, const std::string& endpoint, const std::string& body) {
  using namespace rg::server;
  const ServerLimits limits;
  const ModelInfo info = InfoOf(m);
  const json j = ParseJsonBody(body, limits);
  const bool chat = endpoint == "chat";
  ParsedRequest pr = chat ? ParseChatRequest(j, info, limits) : ParseCompletionRequest(j, info, limits);
  auto job = Job::Create(std::move(pr), info, chat ? ChatShape(info) : CompletionShape(info));
  std::vector<std::shared_ptr<rg::RequestHandle>> handles;
  std::vector<rg::Request> reqs = job->MakeRequests();
  for (rg::Request& r : reqs) r.cache = false;  // the Python API carries state explicitly
  if (m.engine().Submit(std::move(reqs), &handles) != rg::Engine::Admission::kAccepted)
    throw rg::Error("the model's engine refused the request (its queue is full)");
  job->SetHandles(std::move(handles));
  return job;
}

// Streamed pieces of one generation, produced on a worker thread.
class Stream {
 public:
  // produce(push, cancel) runs on the worker; push(piece) hands one over.
  explicit Stream(std::function<void(const std::function<void(std::string)>&, const std::atomic<bool>*)> produce) {
    worker_ = std::thread([this, produce] {
      try {
        produce([this](std::string piece) {
          std::lock_guard<std::mutex> lk(mu_);
          queue_.push_back(std::move(piece));
          cv_.notify_all();
        }, &cancel_);
      } catch (...) {
        err_ = std::current_exception();
      }
      std::lock_guard<std::mutex> lk(mu_);
      done_ = true;
      cv_.notify_all();
    });
  }
  ~Stream() { Close(); }

  void Close() {
    cancel_ = true;
    if (worker_.joinable()) {
      py::gil_scoped_release nogil;
      worker_.join();
    }
  }

  // The next piece; StopIteration at the end.
  std::string Next() {
    for (;;) {
      {
        py::gil_scoped_release nogil;
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait_for(lk, std::chrono::milliseconds(50), [&] { return done_ || !queue_.empty(); });
        if (!queue_.empty()) {
          std::string s = std::move(queue_.front());
          queue_.pop_front();
          return s;
        }
        if (done_) break;
      }
      if (PyErr_CheckSignals() != 0) {
        Close();
        throw py::error_already_set();
      }
    }
    Close();
    if (err_) {
      std::exception_ptr e = err_;
      err_ = nullptr;
      std::rethrow_exception(e);
    }
    throw py::stop_iteration();
  }

 private:
  std::thread worker_;
  std::atomic<bool> cancel_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  bool done_ = false;
  std::exception_ptr err_;
};

GenerateOptions Options(int64_t max_tokens, bool ignore_eos, std::vector<int32_t> stop_ids, std::vector<std::string> stop,
                        rg::SamplingParams sampling) {
  if (max_tokens < 0) throw rg::Error(rg::StrCat("max_tokens must be >= 0, got ", max_tokens));
  GenerateOptions o;
  o.max_tokens = max_tokens;
  o.ignore_eos = ignore_eos;
  o.stop_ids = std::move(stop_ids);
  o.stop = std::move(stop);
  o.sampling = sampling;
  return o;
}

}  // namespace

PYBIND11_MODULE(_rgemma, m) {
  m.doc() = "rgemma: RecurrentGemma inference on the CPU (native module; use the rgemma package)";
  g_error_type = py::register_exception<rg::Error>(m, "RgemmaError", PyExc_ValueError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const rg::server::ApiError& e) {
      PyErr_SetString(g_error_type.ptr(), e.what());
    }
  });
  m.attr("__version__") = "0.2.0";

  py::class_<Model, std::shared_ptr<Model>>(m, "Model")
      .def(py::init([](const std::string& path, int threads, const std::string& weights, bool mmap,
                       const std::string& tokenizer, int parallel) {
             ModelOptions o;
             o.threads = threads;
             o.weights = weights;
             o.mmap = mmap;
             o.tokenizer = tokenizer;
             o.parallel = parallel;
             py::gil_scoped_release nogil;
             return Model::Load(path, o);
           }),
           py::arg("path"), py::arg("threads") = 0, py::arg("weights") = "", py::arg("mmap") = false,
           py::arg("tokenizer") = "", py::arg("parallel") = 4)
      .def_property_readonly("path", &Model::dir)
      .def_property_readonly("vocab_size", [](const Model& x) { return x.config().vocab_size; })
      .def_property_readonly("bos_id", [](const Model& x) { return x.config().bos_id; })
      .def_property_readonly("eos_id", [](const Model& x) { return x.config().eos_id; })
      .def_property_readonly("has_tokenizer", [](const Model& x) { return x.tokenizer() != nullptr; })
      .def_property_readonly("end_of_turn_id",
                             [](const Model& x) { return x.tokenizer() ? x.tokenizer()->end_of_turn_id() : -1; })
      .def("tokenize", [](const Model& x, const std::string& text, bool bos) { return x.Tokenize(text, bos); },
           py::arg("text"), py::arg("bos") = true)
      .def("detokenize", [](const Model& x, const py::iterable& ids) { return x.Detokenize(Ids(ids, "ids")); },
           py::arg("ids"))
      .def(
          "forward",
          [](std::shared_ptr<Model> x, const py::iterable& ids_in) {
            const std::vector<int32_t> ids = Ids(ids_in, "ids");
            if (ids.empty()) throw rg::Error("forward: no tokens");
            x->CheckIds(ids, "forward");
            const int64_t V = x->config().vocab_size;
            py::array_t<float> out({int64_t(ids.size()), V});
            float* dst = out.mutable_data();  // the engine writes the rows here
            Interruptible<int>([&](const std::atomic<bool>* cancel) {
              Sequence seq(x);
              seq.Eval(ids, /*all_rows=*/true, dst, cancel);
              return 0;
            });
            return out;
          },
          py::arg("ids"))
      .def(
          "_generate",
          [](std::shared_ptr<Model> x, Sequence* state, const py::iterable& ids_in, int64_t max_tokens,
             bool ignore_eos, std::vector<int32_t> stop_ids, std::vector<std::string> stop, float temperature,
             int top_k, float top_p, float min_p, float repeat_penalty, int repeat_last_n, float presence_penalty,
             float frequency_penalty, uint64_t seed) {
            const std::vector<int32_t> ids = Ids(ids_in, "prompt");
            const GenerateOptions o = Options(max_tokens, ignore_eos, std::move(stop_ids), std::move(stop),
                                              Sampling(temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n,
                                                       presence_penalty, frequency_penalty, seed));
            std::unique_ptr<Sequence> own;
            Sequence* seq = state;
            if (!seq) seq = (own = std::make_unique<Sequence>(x)).get();
            const Generated g = Interruptible<Generated>(
                [&](const std::atomic<bool>* cancel) { return seq->Generate(ids, o, {}, cancel); });
            return py::make_tuple(g.ids, g.text, rg::FinishReasonName(g.result.reason));
          },
          py::arg("state"), py::arg("ids"), py::arg("max_tokens"), py::arg("ignore_eos"), py::arg("stop_ids"),
          py::arg("stop"), py::arg("temperature"), py::arg("top_k"), py::arg("top_p"), py::arg("min_p"),
          py::arg("repeat_penalty"), py::arg("repeat_last_n"), py::arg("presence_penalty"),
          py::arg("frequency_penalty"), py::arg("seed"))
      .def(
          "_generate_stream",
          [](std::shared_ptr<Model> x, std::shared_ptr<Sequence> state, const py::iterable& ids_in, int64_t max_tokens,
             bool ignore_eos, std::vector<int32_t> stop_ids, std::vector<std::string> stop, float temperature,
             int top_k, float top_p, float min_p, float repeat_penalty, int repeat_last_n, float presence_penalty,
             float frequency_penalty, uint64_t seed) {
            const std::vector<int32_t> ids = Ids(ids_in, "prompt");
            const GenerateOptions o = Options(max_tokens, ignore_eos, std::move(stop_ids), std::move(stop),
                                              Sampling(temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n,
                                                       presence_penalty, frequency_penalty, seed));
            if (!state) state = std::make_shared<Sequence>(x);
            return std::make_unique<Stream>([state, ids, o](const std::function<void(std::string)>& push,
                                                            const std::atomic<bool>* cancel) {
              state->Generate(ids, o, [&](int32_t, std::string_view piece) {
                if (!piece.empty()) push(std::string(piece));
                return true;
              }, cancel);
            });
          },
          py::arg("state"), py::arg("ids"), py::arg("max_tokens"), py::arg("ignore_eos"), py::arg("stop_ids"),
          py::arg("stop"), py::arg("temperature"), py::arg("top_k"), py::arg("top_p"), py::arg("min_p"),
          py::arg("repeat_penalty"), py::arg("repeat_last_n"), py::arg("presence_penalty"),
          py::arg("frequency_penalty"), py::arg("seed"))
      .def(
          "_openai",
          [](std::shared_ptr<Model> x, const std::string& endpoint, const std::string& body) {
            auto job = StartJob(*x, endpoint, body);
            try {
              Interruptible<int>([&](const std::atomic<bool>* cancel) {
                while (!job->WaitFor(0.05))
                  if (cancel->load()) job->Cancel(x->engine());
                return 0;
              });
            } catch (py::error_already_set&) {
              job->Cancel(x->engine());
              throw;
            }
            auto [status, text] = job->FinalResponse();
            if (status != 200) throw rg::Error(rg::server::json::parse(text)["error"]["message"].get<std::string>());
            return text;
          },
          py::arg("endpoint"), py::arg("body"))
      .def(
          "_openai_stream",
          [](std::shared_ptr<Model> x, const std::string& endpoint, const std::string& body) {
            auto job = StartJob(*x, endpoint, body);
            return std::make_unique<Stream>([x, job](const std::function<void(std::string)>& push,
                                                     const std::atomic<bool>* cancel) {
              std::string buf;
              for (bool done = false; !done;) {
                done = job->WaitFor(0.05);
                if (cancel->load()) job->Cancel(x->engine());
                buf += job->TakeStreamBytes();
                for (size_t k; (k = buf.find("\n\n")) != std::string::npos;) {
                  std::string ev = buf.substr(0, k);
                  buf.erase(0, k + 2);
                  if (ev.rfind("data: ", 0) == 0 && ev != "data: [DONE]") push(ev.substr(6));
                }
              }
            });
          },
          py::arg("endpoint"), py::arg("body"));

  py::class_<Stream>(m, "_Stream")
      .def("__iter__", [](Stream& s) -> Stream& { return s; })
      .def("__next__", &Stream::Next)
      .def("close", &Stream::Close);

  py::class_<Sequence, std::shared_ptr<Sequence>>(m, "State")
      .def(py::init([](std::shared_ptr<Model> x) { return std::make_shared<Sequence>(x); }), py::arg("model"))
      .def_property_readonly("pos", &Sequence::pos)
      .def("copy", [](const Sequence& s) { return std::shared_ptr<Sequence>(s.Copy()); })
      .def("logits",
           [](const Sequence& s) -> py::object {
             if (!s.logits()) return py::none();
             const int64_t V = s.model().config().vocab_size;
             return py::array_t<float>(V, s.logits());
           })
      .def("to_bytes", [](const Sequence& s) { return py::bytes(s.ToBytes()); })
      .def("save", &Sequence::Save, py::arg("path"))
      .def_static(
          "load", [](std::shared_ptr<Model> x, const std::string& path) { return std::shared_ptr<Sequence>(Sequence::Load(x, path)); },
          py::arg("model"), py::arg("path"))
      .def_static(
          "from_bytes",
          [](std::shared_ptr<Model> x, const py::bytes& b) {
            return std::shared_ptr<Sequence>(Sequence::FromBytes(x, std::string(b), "state bytes"));
          },
          py::arg("model"), py::arg("data"))
      .def(
          "eval",
          [](Sequence& s, const py::iterable& ids_in) {
            const std::vector<int32_t> ids = Ids(ids_in, "ids");
            Interruptible<int>([&](const std::atomic<bool>* cancel) {
              s.Eval(ids, false, nullptr, cancel);
              return 0;
            });
          },
          py::arg("ids"))
      .def(
          "score",
          [](Sequence& s, const py::iterable& ids_in) {
            const std::vector<int32_t> ids = Ids(ids_in, "ids");
            return Interruptible<std::vector<double>>(
                [&](const std::atomic<bool>* cancel) { return s.Score(ids, cancel); });
          },
          py::arg("ids"));
}
