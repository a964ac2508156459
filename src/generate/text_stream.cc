#include "generate/text_stream.h"

#include <algorithm>

namespace rg {

TextStream::TextStream(const Tokenizer& tok, std::vector<std::string> stop_strings)
    : decoder_(tok), stops_(std::move(stop_strings)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

std::string TextStream::Push(int id, bool* stopped) {
  if (stopped_) {
    *stopped = true;
    return "";
  }
  held_ += decoder_.Push(id);
  // A complete stop string: release what precedes the earliest one and stop.
  size_t cut = std::string::npos;
  for (const std::string& s : stops_) cut = std::min(cut, held_.find(s));
  if (cut != std::string::npos) {
    std::string out = held_.substr(0, cut);
    held_.clear();
    stopped_ = true;
    *stopped = true;
    return out;
  }
  *stopped = false;
  return Release(false);
}

std::string TextStream::Release(bool final) {
  size_t keep = 0;  // longest suffix of held_ that is a proper prefix of a stop string
  if (!final) {
    for (const std::string& s : stops_)
      for (size_t n = std::min(s.size() - 1, held_.size()); n > keep; --n)
        if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
          keep = n;
          break;
        }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string TextStream::Finish() {
  if (stopped_) return "";
  held_ += decoder_.Flush();
  return Release(true);
}

}  // namespace rg
