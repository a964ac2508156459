// Turns generated token ids into text that is safe to show as it arrives:
// complete UTF-8 only, and never any part of a stop string (text that could
// still become a stop string is held back until it cannot).
#pragma once

#include <string>
#include <vector>

#include "tokenizer/stream_decoder.h"

namespace rg {

class TextStream {
 public:
  TextStream(const Tokenizer& tok, std::vector<std::string> stop_strings);

  // Text that may be shown now. Sets *stopped when a stop string completed;
  // the text before it is returned and the stop string itself is dropped.
  std::string Push(int id, bool* stopped);
  // The rest at the end of generation.
  std::string Finish();

 private:
  std::string Release(bool final);
  StreamDecoder decoder_;
  std::vector<std::string> stops_;
  std::string held_;  // decoded text not yet released
  bool stopped_ = false;
};

}  // namespace rg
