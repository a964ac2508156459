// rgemma chat: interactive multi-turn chat in the Gemma turn format.
//   rgemma chat -m DIR [--tokenizer FILE] [--system TEXT] [-n 512] [sampling flags]
//               [--load FILE] [--threads N]
// Reads one user message per line from stdin (a terminal, with libedit's
// line editing and history: cli/line_input.h; or a pipe), streams the reply
// to stdout, and carries the model's State from turn to turn: the
// history is never re-run, so a turn costs the same however long the
// conversation is. Commands: /reset, /save FILE, /load FILE, /quit, /help.
// Ctrl-C stops the current reply (a second one during the same reply exits);
// Ctrl-C at the prompt, /quit or end of input exits.
//
// Conversation layout in the State, turn after turn:
//   <bos><start_of_turn>user\n{msg}<end_of_turn>\n<start_of_turn>model\n{reply}
//   <end_of_turn>\n<start_of_turn>user\n{msg}<end_of_turn>\n<start_of_turn>model\n{reply} ...
// The reply's closing <end_of_turn> (sampled but not fed, or missing when the
// reply hit -n or was interrupted) is fed at the start of the next user turn.
//
// Sampling: each turn uses a sampler seeded from (--seed, context position)
// whose penalty history holds the last tokens of the conversation; both are
// in the state file, so a /load-ed conversation continues exactly as the
// uninterrupted one would, greedy or not.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/chat_state.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/escapes.h"
#include "cli/interrupt.h"
#include "cli/line_input.h"
#include "cli/model_files.h"
#include "cli/sampling_flags.h"
#include "core/error.h"
#include "generate/engine.h"
#include "generate/text_stream.h"
#include "model/state_io.h"
#include "tokenizer/chat_template.h"

namespace rg::cli {
namespace {

struct ChatArgs {
  ModelFlags m;
  std::string system, load;
  int64_t max_tokens = 512;
  bool print_ids = false, quiet = false;
  bool echo_input = false;  // tests: each message and its prompt ids on stderr
  bool escape = false;      // -e: backslash escapes in --system
  SamplingFlags sampling_flags;
  SamplingParams sampling;  // resolved from sampling_flags (the seed)
};

uint64_t TurnSeed(uint64_t seed, int64_t pos) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * uint64_t(pos + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class Chat {
 public:
  Chat(const ChatArgs& a, const Weights& weights, Engine& engine, const Tokenizer& tok)
      : a_(a),
        tok_(tok),
        weights_(weights),
        engine_(engine),
        state_(weights.config),
        fingerprint_(FingerprintOf(weights)),
        keep_recent_(size_t(std::max(a.sampling.repeat_last_n, 256))),
        in_(LineInput::ForStdin(/*edit=*/true)) {}

  void Load(const std::string& path) {
    const Config& c = weights_.config;
    State loaded(c);
    const StateFileExtras fx = LoadState(path, c, fingerprint_, &loaded);
    ChatExtras ex = DecodeChatExtras(fx.app, path, c.vocab_size);  // before anything changes
    state_ = std::move(loaded);
    extras_ = ex;
    recent_.assign(ex.recent_tokens.begin(), ex.recent_tokens.end());
    TrimRecent();
    Note("loaded ", path, ": ", ex.turns, " turn(s), context ", state_.pos, " tokens");
  }

  void Run() {
    if (in_->interactive())
      std::fprintf(stderr, "chat with %s: one message per line (end a line with \\ to continue it); "
                           "/help for commands, Ctrl-C stops a reply, /quit or Ctrl-D exits\n",
                   weights_.dir.c_str());
    for (;;) {
      InterruptFlag().store(false);
      std::string line;
      if (!ReadMessage(&line)) break;
      const std::string_view text = TrimChatContent(line);
      if (text.empty()) continue;
      if (text[0] == '/' && !(text.size() > 1 && text[1] == '/')) {
        if (!Command(text)) break;
        continue;
      }
      Turn(std::string(text[0] == '/' ? text.substr(1) : text));  // "//x" sends "/x"
    }
  }

 private:
  template <class... Args>
  void Note(const Args&... args) {
    const std::string s = StrCat(args...);
    std::fprintf(stderr, "%s\n", s.c_str());
  }

  // A message, joining lines that end with a backslash. False at the end.
  bool ReadMessage(std::string* msg) {
    msg->clear();
    for (bool first = true;; first = false) {
      std::string line;
      const LineInput::Result r = in_->Read(first ? "> " : ". ", &line);
      if (r != LineInput::Result::kLine) {
        if (in_->interactive()) std::fputs("\n", stderr);
        return r == LineInput::Result::kEof && !msg->empty();
      }
      const bool more = !line.empty() && line.back() == '\\';
      if (more) line.pop_back();
      msg->append(line);
      if (!more) return true;
      msg->push_back('\n');
    }
  }

  // Runs a /command; false to quit.
  bool Command(std::string_view line) {
    const size_t sp = line.find_first_of(" \t");
    const std::string name(line.substr(0, sp));
    const std::string arg(sp == std::string_view::npos ? std::string_view() : TrimChatContent(line.substr(sp)));
    auto need_arg = [&] {
      if (arg.empty()) Note("error: ", name, " needs a file name: ", name, " FILE");
      return !arg.empty();
    };
    auto no_arg = [&] {
      if (!arg.empty()) Note("error: ", name, " takes no argument");
      return arg.empty();
    };
    try {
      if (name == "/quit" || name == "/exit") {
        return false;
      } else if (name == "/help" || name == "/?") {
        Note("commands:\n"
             "  /reset      start a new conversation\n"
             "  /save FILE  save the conversation state (constant size; continue it later with /load)\n"
             "  /load FILE  restore a saved conversation\n"
             "  /quit       exit (also Ctrl-D, or Ctrl-C at the prompt)\n"
             "  /help       this text\n"
             "a line ending with \\ continues on the next line; start a message with // to send a\n"
             "literal leading /; Ctrl-C stops the current reply");
      } else if (name == "/reset") {
        if (no_arg()) {
          state_.Reset();
          extras_ = ChatExtras{};
          recent_.clear();
          Note("conversation reset");
        }
      } else if (name == "/save") {
        if (need_arg()) {
          extras_.recent_tokens.assign(recent_.begin(), recent_.end());
          StateFileExtras fx;
          fx.app = EncodeChatExtras(extras_);
          SaveState(arg, state_, weights_.config, fingerprint_, fx);
          Note("saved ", arg, ": ", extras_.turns, " turn(s), context ", state_.pos, " tokens");
        }
      } else if (name == "/load") {
        if (need_arg()) Load(arg);
      } else {
        Note("error: unknown command ", name, " (/help lists the commands)");
      }
    } catch (const Error& e) {
      Note("error: ", e.what());
    }
    return true;
  }

  void TrimRecent() {
    while (recent_.size() > keep_recent_) recent_.pop_front();
  }

  void Turn(const std::string& message) {
    std::vector<int> ids;
    try {
      std::string text = message;
      if (!extras_.started && !a_.system.empty())
        text = StrCat(TrimChatContent(a_.system), "\n\n", TrimChatContent(message));
      ids = UserTurnIds(tok_, text, !extras_.started, extras_.context_has_end_of_turn);
    } catch (const Error& e) {
      Note("error: ", e.what());
      return;
    }
    if (a_.echo_input) {
      std::string list;
      for (int id : ids) list += StrCat(list.empty() ? "" : " ", id);
      Note("[input] ", nlohmann::json(message).dump());
      Note("[input ids] ", list);
    }

    using Clock = std::chrono::steady_clock;
    TextStream text(tok_, {});
    std::vector<int32_t> reply;
    std::optional<Clock::time_point> t_first;
    Request req;
    req.prompt.assign(ids.begin(), ids.end());
    req.state = &state_;  // carried from turn to turn; holds every token of the reply afterwards
    req.sampling = a_.sampling;
    req.sampling.seed = TurnSeed(a_.sampling.seed, state_.pos);
    req.history.assign(recent_.begin(), recent_.end());
    req.max_tokens = a_.max_tokens;
    req.stop_ids = {tok_.end_of_turn_id()};
    req.on_token = [&](int32_t id, const TokenLogprob*) {
      if (!t_first) t_first = Clock::now();
      reply.push_back(id);
      if (a_.print_ids) {
        std::printf(reply.size() > 1 ? " %d" : "%d", id);
      } else {
        bool stopped = false;
        const std::string piece = text.Push(id, &stopped);
        std::fwrite(piece.data(), 1, piece.size(), stdout);
      }
      std::fflush(stdout);
      return true;
    };
    const std::vector<int32_t> prompt = req.prompt;

    const auto t0 = Clock::now();
    InterruptExitsOnSecond().store(true);
    const Result st = engine_.Run(std::move(req), &InterruptFlag());
    InterruptExitsOnSecond().store(false);
    if (st.reason == FinishReason::kError) {
      std::printf("\n");
      std::fflush(stdout);
      state_.Reset();
      extras_ = ChatExtras{};
      recent_.clear();
      Note("error: ", st.error, " (the conversation was reset)");
      return;
    }
    if (!a_.print_ids) {
      const std::string rest = text.Finish();
      std::fwrite(rest.data(), 1, rest.size(), stdout);
    }
    std::printf("\n");
    std::fflush(stdout);

    extras_.started = true;
    extras_.context_has_end_of_turn = false;  // a sampled <end_of_turn> is never fed
    ++extras_.turns;
    recent_.insert(recent_.end(), prompt.begin(), prompt.end());
    recent_.insert(recent_.end(), reply.begin(), reply.end());
    TrimRecent();

    if (a_.quiet) return;
    const char* why = "max tokens";
    if (st.reason == FinishReason::kCancelled) why = "interrupted";
    else if (st.reason == FinishReason::kStop)
      why = st.stop_token == tok_.end_of_turn_id() ? "end_of_turn" : "eos";
    const double ttft = t_first ? std::chrono::duration<double>(*t_first - t0).count() : st.prefill_seconds;
    std::fprintf(stderr,
                 "[turn %lld] prompt %lld tok, prefill %.3f s (%.1f tok/s), first token %.3f s | reply %lld tok, "
                 "decode %.2f tok/s | context %lld tok | %s\n",
                 (long long)extras_.turns, (long long)st.prompt_tokens, st.prefill_seconds,
                 st.prefill_seconds > 0 ? double(st.prompt_tokens) / st.prefill_seconds : 0.0, ttft,
                 (long long)st.generated_tokens,
                 st.decode_seconds > 0 ? double(st.generated_tokens) / st.decode_seconds : 0.0,
                 (long long)state_.pos, why);
  }

  const ChatArgs& a_;
  const Tokenizer& tok_;
  const Weights& weights_;
  Engine& engine_;
  State state_;  // the conversation
  ModelFingerprint fingerprint_;
  ChatExtras extras_;           // recent_tokens is filled only when saving
  std::deque<int32_t> recent_;  // last fed tokens (sampler penalty history)
  size_t keep_recent_;
  std::unique_ptr<LineInput> in_;
};

void RunChat(ChatArgs a) {
  a.sampling = ResolveSampling(a.sampling_flags);
  if (a.escape) a.system = ProcessEscapes(a.system);
  std::optional<ThreadPool> pool;
  std::shared_ptr<const Weights> weights;
  std::optional<Engine> engine;
  std::unique_ptr<Tokenizer> tok;
  {
    BlockSigint block;  // the workers never take SIGINT
    pool.emplace(ResolveThreads(a.m.threads));
    weights = LoadModel(a.m, *pool, a.quiet ? LoadNotes::kNone : LoadNotes::kAll);
    tok = LoadTokenizerFor(a.m.model, a.m.tokenizer, /*required=*/true);
    EngineOptions opt;
    opt.kernels = a.m.kernels();
    opt.sample_vocab = SampleableVocab(weights->config, tok.get(), a.quiet);
    engine.emplace(weights, *pool, opt);
  }
  if (!a.quiet) NoteRandomSeed(a.sampling_flags, a.sampling);
  Chat chat(a, *weights, *engine, *tok);
  if (!a.load.empty()) chat.Load(a.load);
  SigintScope sigint;
  chat.Run();
}

}  // namespace

void RegisterChat(CLI::App& app) {
  auto a = std::make_shared<ChatArgs>();
  CLI::App* cmd = app.add_subcommand("chat", "Interactive multi-turn chat (Gemma turn format), stdin to stdout");
  AddModelFlags(cmd, &a->m);
  cmd->add_option("--system", a->system, "Instructions folded into the first user turn (Gemma has no system role)");
  cmd->add_option("--max-tokens,-n", a->max_tokens, "Most tokens per reply")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40))->capture_default_str();
  cmd->add_option("--load", a->load, "Start from a conversation saved with /save");
  cmd->add_flag("--quiet,-q", a->quiet, "No model info or per-turn timings on stderr");
  cmd->add_flag("--print-ids", a->print_ids, "Print each reply as token ids (for tests)")->group("");
  cmd->add_flag("--echo-input", a->echo_input, "Print each message and its prompt ids on stderr (for tests)")
      ->group("");
  cmd->add_flag("--escape,-e", a->escape, "Process escapes (\\n, \\t, \\\\, \\\") in --system");
  AddSamplingFlags(cmd, &a->sampling_flags);
  cmd->callback([a] { RunChat(*a); });
}

}  // namespace rg::cli
