#include "tokenizer/tokenizer.h"

#include <sentencepiece_processor.h>

#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/file_io.h"
#include "tokenizer/utf8.h"

namespace rg {

namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581 '▁'

// sentencepiece status messages may span lines; rg::Error messages may not.
std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

void AppendUnescapingSpaces(std::string_view piece, std::string* out) {
  size_t pos = 0;
  while (true) {
    const size_t hit = piece.find(kSpaceSymbol, pos);
    if (hit == std::string_view::npos) {
      out->append(piece.substr(pos));
      return;
    }
    out->append(piece.substr(pos, hit - pos));
    out->push_back(' ');
    pos = hit + kSpaceSymbol.size();
  }
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::Load(const std::string& path) {
  const std::string data = ReadRegularFile(path, kMaxTokenizerBytes, "tokenizer");
  if (data.empty()) Fail("tokenizer: '", path, "' is empty, expected a SentencePiece model");

  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->path_ = path;
  t->sp_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto st = t->sp_->LoadFromSerializedProto(data);
  if (!st.ok()) {
    const std::string why = OneLine(st.message());
    Fail("tokenizer: '", path, "' is not a valid SentencePiece model (",
         why.find("ParseFromArray") != std::string::npos ? "not a ModelProto protobuf" : why,
         ")");
  }
  auto& sp = *t->sp_;
  const int n = sp.GetPieceSize();
  if (n <= 0) Fail("tokenizer: '", path, "' has an empty vocabulary");
  t->vocab_size_ = n;
  t->bos_id_ = sp.bos_id();
  t->eos_id_ = sp.eos_id();
  t->pad_id_ = sp.pad_id();
  t->unk_id_ = sp.unk_id();
  if (t->bos_id_ < 0 || t->bos_id_ >= n || t->eos_id_ < 0 || t->eos_id_ >= n) {
    Fail("tokenizer: '", path, "' has no valid <bos>/<eos> ids (bos=", t->bos_id_, ", eos=",
         t->eos_id_, ", vocab=", n, ")");
  }
  auto find_piece = [&](const char* piece) {
    const int id = sp.PieceToId(piece);
    if (id < 0 || id >= n || sp.IdToPiece(id) != piece) {
      Fail("tokenizer: '", path, "' has no ", piece, " piece (not a Gemma tokenizer?)");
    }
    return id;
  };
  t->start_of_turn_id_ = find_piece("<start_of_turn>");
  t->end_of_turn_id_ = find_piece("<end_of_turn>");

  // Per-id tables for Piece / IsControl / IsByte / Surface.
  t->kind_.resize(n);
  t->byte_value_.assign(n, -1);
  t->surface_off_.resize(size_t(n) + 1);
  t->surface_arena_.reserve(size_t(n) * 8);
  for (int id = 0; id < n; ++id) {
    t->surface_off_[id] = uint32_t(t->surface_arena_.size());
    const std::string& piece = sp.IdToPiece(id);
    if (sp.IsByte(id)) {
      t->kind_[id] = kByte;
      // Pieces are spelled "<0xNN>".
      unsigned v = 0;
      if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>' ||
          std::sscanf(piece.c_str() + 3, "%2x", &v) != 1) {
        Fail("tokenizer: '", path, "': byte piece ", id, " is spelled '", piece,
             "', expected <0xNN>");
      }
      t->byte_value_[id] = int16_t(v);
    } else if (sp.IsControl(id)) {
      t->kind_[id] = kControl;
    } else if (sp.IsUnknown(id) || sp.IsUnused(id)) {
      // Rare: let sentencepiece tell us what they decode to (<unk> -> " ⁇ ").
      t->kind_[id] = sp.IsUnknown(id) ? kUnknown : kNormal;
      t->surface_arena_ += sp.DecodeIds({id});
    } else {
      t->kind_[id] = kNormal;
      AppendUnescapingSpaces(piece, &t->surface_arena_);
    }
  }
  t->surface_off_[n] = uint32_t(t->surface_arena_.size());

  // StreamDecoder relies on pieces decoding the same wherever they occur.
  // Models with add_dummy_prefix / remove_extra_whitespaces strip the space
  // of the first piece on decode; Gemma does not. Detect and refuse.
  for (int id = 0; id < n; ++id) {
    if (t->kind_[id] == kNormal && sp.IdToPiece(id).starts_with(kSpaceSymbol)) {
      if (sp.DecodeIds({id}) != t->Surface(id)) {
        Fail("tokenizer: '", path, "' strips the leading space when decoding (add_dummy_prefix);"
             " only Gemma-style models without a dummy prefix are supported");
      }
      break;
    }
  }
  return t;
}

void Tokenizer::CheckId(int id, const char* what) const {
  if (id < 0 || id >= vocab_size_) {
    Fail("tokenizer: ", what, ": token id ", id, " is out of range [0, ", vocab_size_, ")");
  }
}

std::vector<int> Tokenizer::Encode(std::string_view text) const {
  size_t bad = 0;
  if (!IsValidUtf8(text, &bad)) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", unsigned(static_cast<unsigned char>(text[bad])));
    Fail("tokenizer: input text is not valid UTF-8: invalid byte ", hex, " at byte offset ", bad);
  }
  std::vector<int> ids;
  const auto st = sp_->Encode(text, &ids);
  if (!st.ok()) Fail("tokenizer: encode failed: ", OneLine(st.ToString()));
  return ids;
}

std::string Tokenizer::Decode(const std::vector<int>& ids) const {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size_) {
      Fail("tokenizer: decode: token id ", ids[i], " at position ", i, " is out of range [0, ",
           vocab_size_, ")");
    }
  }
  std::string text;
  const auto st = sp_->Decode(ids, &text);
  if (!st.ok()) Fail("tokenizer: decode failed: ", OneLine(st.ToString()));
  return text;
}

std::string_view Tokenizer::Piece(int id) const {
  CheckId(id, "Piece");
  return sp_->IdToPiece(id);
}

bool Tokenizer::IsControl(int id) const {
  CheckId(id, "IsControl");
  return kind_[id] == kControl;
}

bool Tokenizer::IsByte(int id) const {
  CheckId(id, "IsByte");
  return kind_[id] == kByte;
}

bool Tokenizer::IsUnknown(int id) const {
  CheckId(id, "IsUnknown");
  return kind_[id] == kUnknown;
}

int Tokenizer::ByteValue(int id) const {
  CheckId(id, "ByteValue");
  return byte_value_[id];
}

std::string_view Tokenizer::Surface(int id) const {
  CheckId(id, "Surface");
  return std::string_view(surface_arena_).substr(surface_off_[id],
                                                 surface_off_[id + 1] - surface_off_[id]);
}

}  // namespace rg
