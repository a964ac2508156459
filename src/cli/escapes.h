// llama.cpp's -e/--escape: backslash escapes in text given on the command
// line (prompts, stop strings, --system), since a shell argument cannot
// easily hold a newline: \n \t \r \\ \" \' become the character; any other
// backslash is kept as it is.
#pragma once

#include <string>
#include <string_view>

namespace rg::cli {

std::string ProcessEscapes(std::string_view s);

}  // namespace rg::cli
