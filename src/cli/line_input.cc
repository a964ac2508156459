#include "cli/line_input.h"

#include <histedit.h>
#include <langinfo.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <clocale>
#include <cstring>
#include <cwchar>

#include "cli/interrupt.h"
#include "core/error.h"

namespace rg::cli {

std::string StripTerminalControls(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0x1b) {  // ESC: skip the whole sequence
      ++i;
      if (i < s.size() && s[i] == '[') {  // CSI: parameters and intermediates, then a final byte @..~
        ++i;
        while (i < s.size() && (static_cast<unsigned char>(s[i]) < 0x40 || static_cast<unsigned char>(s[i]) > 0x7e)) ++i;
        if (i < s.size()) ++i;
      } else if (i < s.size() && s[i] == 'O') {  // SS3: one more byte
        i += std::min<size_t>(2, s.size() - i);
      } else if (i < s.size()) {  // ESC x (Alt+x)
        ++i;
      }
      continue;
    }
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      ++i;
      continue;
    }
    if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(s[i + 1]) <= 0x9f) {  // C1 control, UTF-8 encoded
      i += 2;
      continue;
    }
    out.push_back(s[i]);
    ++i;
  }
  return out;
}

namespace {

// Waits for stdin to be readable; false once Ctrl-C was pressed.
bool WaitReadable() {
  for (;;) {
    if (InterruptFlag().load()) return false;
    pollfd p{STDIN_FILENO, POLLIN, 0};
    const int r = poll(&p, 1, 200);  // the timeout only bounds a missed wake-up
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) Fail("stdin: ", std::strerror(errno));
  }
}

// ---- plain lines (a pipe or a file)
class PlainInput : public LineInput {
 public:
  static constexpr size_t kMaxLine = 64u << 20;

  explicit PlainInput(bool tty) : tty_(tty) {}
  bool interactive() const override { return tty_; }

  Result Read(const char* prompt, std::string* line) override {
    if (tty_) std::fputs(prompt, stderr), std::fflush(stderr);
    for (;;) {
      const size_t nl = buf_.find('\n');
      if (nl != std::string::npos || (eof_ && !buf_.empty())) {
        const size_t n = nl == std::string::npos ? buf_.size() : nl;
        *line = StripTerminalControls(std::string_view(buf_).substr(0, n));  // also drops a \r before \n
        buf_.erase(0, nl == std::string::npos ? n : n + 1);
        return Result::kLine;
      }
      if (eof_) return Result::kEof;
      RG_CHECK(buf_.size() <= kMaxLine, "stdin: an input line is longer than ", kMaxLine, " bytes");
      if (!WaitReadable()) return Result::kInterrupted;
      char tmp[1 << 16];
      const ssize_t k = read(STDIN_FILENO, tmp, sizeof tmp);
      if (k < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        Fail("stdin: ", std::strerror(errno));
      }
      if (k == 0) eof_ = true;
      else buf_.append(tmp, size_t(k));
    }
  }

 private:
  bool tty_;
  std::string buf_;
  bool eof_ = false;
};

// ---- libedit on a terminal
class EditInput : public LineInput {
 public:
  EditInput() {
    // libedit converts between the terminal's bytes and wide characters with
    // the locale: make it UTF-8 (LC_CTYPE only) so non-ASCII text survives.
    std::setlocale(LC_CTYPE, "");
    if (std::strcmp(nl_langinfo(CODESET), "UTF-8") != 0) std::setlocale(LC_CTYPE, "C.UTF-8");
    el_ = el_init("rgemma", stdin, stderr, stderr);
    RG_CHECK(el_, "chat: cannot set up line editing on this terminal");
    hist_ = history_winit();
    HistEventW ev;
    history_w(hist_, &ev, H_SETSIZE, 1000);
    history_w(hist_, &ev, H_SETUNIQUE, 1);
    el_set(el_, EL_CLIENTDATA, this);
    el_set(el_, EL_EDITOR, "emacs");
    el_set(el_, EL_SIGNAL, 0);  // Ctrl-C is ours (InterruptFlag), not libedit's
    el_wset(el_, EL_HIST, history_w, hist_);
    el_set(el_, EL_PROMPT, &EditInput::Prompt);
    el_wset(el_, EL_GETCFN, &EditInput::GetChar);
    BindKeys();
    el_source(el_, nullptr);  // the user's ~/.editrc, as other libedit programs
  }
  ~EditInput() override {
    el_end(el_);
    history_wend(hist_);
  }
  bool interactive() const override { return true; }

  Result Read(const char* prompt, std::string* line) override {
    prompt_ = prompt;
    eof_ = false;
    int n = 0;
    const wchar_t* w = el_wgets(el_, &n);
    if (InterruptFlag().load()) return Result::kInterrupted;
    if (!w || n <= 0) return Result::kEof;
    std::wstring text(w, size_t(n));
    if (!text.empty() && text.back() == L'\n') text.pop_back();
    if (!text.empty()) {
      HistEventW ev;
      history_w(hist_, &ev, H_ENTER, text.c_str());
    }
    *line = StripTerminalControls(ToUtf8(text));
    return Result::kLine;
  }

 private:
  // libedit knows the arrow keys; without these, the other keys of a PC
  // keyboard would insert the tail of their escape sequence ("\e[15~" -> "5~").
  void BindKeys() {
    struct Key {
      const char* seq;
      const char* fn;
    };
    static constexpr Key kKeys[] = {
        {"\033[H", "ed-move-to-beg"},  {"\033[1~", "ed-move-to-beg"},   {"\033OH", "ed-move-to-beg"},
        {"\033[F", "ed-move-to-end"},  {"\033[4~", "ed-move-to-end"},   {"\033OF", "ed-move-to-end"},
        {"\033[3~", "ed-delete-next-char"}, {"\033[1;5C", "em-next-word"}, {"\033[1;5D", "ed-prev-word"},
        {"\033[2~", "ed-redisplay"},   {"\033[5~", "ed-redisplay"},     {"\033[6~", "ed-redisplay"},
        {"\033[15~", "ed-redisplay"},  {"\033[17~", "ed-redisplay"},    {"\033[18~", "ed-redisplay"},
        {"\033[19~", "ed-redisplay"},  {"\033[20~", "ed-redisplay"},    {"\033[21~", "ed-redisplay"},
        {"\033[23~", "ed-redisplay"},  {"\033[24~", "ed-redisplay"},    {"\033OP", "ed-redisplay"},
        {"\033OQ", "ed-redisplay"},    {"\033OR", "ed-redisplay"},      {"\033OS", "ed-redisplay"},
    };
    for (const Key& k : kKeys) el_set(el_, EL_BIND, k.seq, k.fn, nullptr);
  }

  static char* Prompt(EditLine* el) {
    void* self = nullptr;
    el_get(el, EL_CLIENTDATA, &self);
    return const_cast<char*>(static_cast<EditInput*>(self)->prompt_);
  }

  // libedit's character source: one decoded UTF-8 character, 0 at the end of
  // input, -1 (ending the line read) once Ctrl-C was pressed.
  static int GetChar(EditLine* el, wchar_t* out) {
    void* self = nullptr;
    el_get(el, EL_CLIENTDATA, &self);
    EditInput& in = *static_cast<EditInput*>(self);
    std::mbstate_t st{};
    char bytes[8];
    size_t have = 0;
    for (;;) {
      if (!WaitReadable()) {
        errno = EINTR;
        return -1;
      }
      const ssize_t k = read(STDIN_FILENO, bytes + have, 1);
      if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (k <= 0) {
        in.eof_ = true;
        return 0;
      }
      ++have;
      const size_t r = std::mbrtowc(out, bytes + have - 1, 1, &st);
      if (r == size_t(-2) && have < 4) continue;  // an incomplete character
      if (r == size_t(-1) || r == size_t(-2)) *out = L'\uFFFD';
      return 1;
    }
  }

  static std::string ToUtf8(const std::wstring& w) {
    std::string out;
    std::mbstate_t st{};
    char buf[MB_LEN_MAX];
    for (wchar_t c : w) {
      const size_t n = std::wcrtomb(buf, c, &st);
      if (n != size_t(-1)) out.append(buf, n);
    }
    return out;
  }

  EditLine* el_ = nullptr;
  HistoryW* hist_ = nullptr;
  const char* prompt_ = "";
  bool eof_ = false;
};

}  // namespace

std::unique_ptr<LineInput> LineInput::ForStdin(bool edit) {
  const bool tty = isatty(STDIN_FILENO) && isatty(STDERR_FILENO);
  if (edit && tty) return std::make_unique<EditInput>();
  return std::make_unique<PlainInput>(isatty(STDIN_FILENO));
}

}  // namespace rg::cli
