#include "sampling/grammar/json_schema.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "core/error.h"
#include "sampling/grammar/gbnf_parser.h"
#include "sampling/grammar/grammar_builder.h"
#include "sampling/grammar/int_range.h"

namespace rg {

namespace {

using Json = nlohmann::ordered_json;

// ---- the fixed JSON rules, emitted when used (with their dependencies)

struct Primitive {
  const char* name;
  const char* body;
  std::vector<const char*> deps;
};

const std::vector<Primitive>& Primitives() {
  static const std::vector<Primitive> kPrimitives = {
      {"ws", R"G(( " " | "\n" [ \t]{0,40} )?)G", {}},
      // \uXXXX never encodes a surrogate (D800-DFFF): strict parsers reject lone ones.
      {"json-hex4", R"G([0-9a-cA-CeEfF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2})G", {}},
      {"json-char", R"G([^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" json-hex4 ))G", {"json-hex4"}},
      {"json-key-char", R"G([^"\\\x00-\x1F])G", {}},  // unescaped: for keys compared raw
      {"json-string", R"G("\"" json-char* "\"")G", {"json-char"}},
      {"json-integer", R"G("-"? ( "0" | [1-9] [0-9]{0,15} ))G", {}},
      {"json-number",
       R"G(json-integer ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?)G",
       {"json-integer"}},
      {"json-boolean", R"G("true" | "false")G", {}},
      {"json-null", R"G("null")G", {}},
      {"json-value",
       "json-object | json-array | json-string | json-number | json-boolean | json-null",
       {"json-object", "json-array", "json-string", "json-number", "json-boolean", "json-null"}},
      {"json-member",
       R"G(json-string ws ":" ws json-value ws)G",
       {"json-string", "ws", "json-value"}},
      {"json-object",
       R"G("{" ws ( json-member ( "," ws json-member )* )? "}")G",
       {"ws", "json-member"}},
      {"json-array",
       R"G("[" ws ( json-value ws ( "," ws json-value ws )* )? "]")G",
       {"ws", "json-value"}},
  };
  return kPrimitives;
}

// ---- keyword classes

const std::set<std::string>& SupportedKeywords() {
  static const std::set<std::string> k = {
      "type",    "enum",     "const",    "properties", "required",         "additionalProperties",
      "items",   "minItems", "maxItems", "minLength",  "maxLength",        "minimum",
      "maximum", "anyOf",    "oneOf",    "allOf",      "exclusiveMinimum", "exclusiveMaximum",
      "$ref"};
  return k;
}

const std::set<std::string>& UnsupportedKeywords() {
  static const std::set<std::string> k = {"pattern",
                                          "patternProperties",
                                          "propertyNames",
                                          "minProperties",
                                          "maxProperties",
                                          "dependentRequired",
                                          "dependentSchemas",
                                          "dependencies",
                                          "unevaluatedProperties",
                                          "unevaluatedItems",
                                          "prefixItems",
                                          "additionalItems",
                                          "contains",
                                          "minContains",
                                          "maxContains",
                                          "uniqueItems",
                                          "not",
                                          "if",
                                          "then",
                                          "else",
                                          "multipleOf",
                                          "$dynamicRef",
                                          "$dynamicAnchor",
                                          "$recursiveRef",
                                          "$recursiveAnchor"};
  return k;
}

constexpr const char* kSupportedList =
    "type, enum, const, properties, required, additionalProperties, items, minItems, maxItems, "
    "minLength, maxLength, minimum/maximum/exclusiveMinimum/exclusiveMaximum on integers, anyOf, "
    "oneOf, allOf with one schema, $ref";

// JSON pointer token escaping (RFC 6901).
std::string PointerToken(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

// A GBNF string literal for raw bytes (valid UTF-8 passes through).
std::string GbnfLiteral(const std::string& bytes) {
  std::string out = "\"";
  for (char ch : bytes) {
    const uint8_t c = uint8_t(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string CodepointEscape(uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "\\U%08X", cp);
  return buf;
}

// Code points of a valid UTF-8 string (nlohmann validates strings it parses).
std::vector<uint32_t> DecodeUtf8(const std::string& s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    const uint8_t b = uint8_t(s[i]);
    const int len = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
    uint32_t cp = len == 1 ? b : len == 2 ? b & 0x1F : len == 3 ? b & 0x0F : b & 0x07;
    for (int k = 1; k < len && i + size_t(k) < s.size(); ++k)
      cp = (cp << 6) | (uint8_t(s[i + k]) & 0x3F);
    out.push_back(cp);
    i += size_t(len);
  }
  return out;
}

class SchemaCompiler {
  struct Prop {
    std::string key;
    const Json* schema;  // nullptr: any value (a required name not in properties)
    bool required;
  };

 public:
  explicit SchemaCompiler(const Json& root) : root_(root) {
    names_.insert("root");
    for (const Primitive& p : Primitives()) names_.insert(p.name);
  }

  std::string Run() {
    const std::string value = Compile(root_, "#", 0, "value");
    std::string out = "root ::= " + Use("ws") + " " + value + "\n";
    for (const auto& [name, body] : rules_) out += name + " ::= " + body + "\n";
    for (const Primitive& p : Primitives()) {
      if (used_.count(p.name)) out += std::string(p.name) + " ::= " + p.body + "\n";
    }
    return out;
  }

 private:
  // ---- helpers

  template <class... Args>
  [[noreturn]] static void FailAt(const std::string& path, const Args&... args) {
    Fail("json_schema: ", args..., " at ", path);
  }

  std::string Use(const std::string& primitive) {
    if (used_.insert(primitive).second) {
      for (const Primitive& p : Primitives()) {
        if (primitive == p.name) {
          for (const char* dep : p.deps) Use(dep);
        }
      }
    }
    return primitive;
  }

  std::string NewName(const std::string& hint) {
    std::string base;
    for (char c : hint) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (ok)
        base += c;
      else if (!base.empty() && base.back() != '-')
        base += '-';
      if (base.size() >= 32) break;
    }
    while (!base.empty() && base.back() == '-') base.pop_back();
    if (base.empty()) base = "s";
    std::string name = base;
    for (int n = 2; names_.count(name); ++n) name = base + "-" + std::to_string(n);
    names_.insert(name);
    return name;
  }

  std::string Define(const std::string& hint, const std::string& body) {
    std::string name = NewName(hint);
    rules_.emplace_back(name, body);
    return name;
  }

  // A non-negative integer keyword (<= kGrammarMaxRepeat), or `fallback`.
  static int Count(const Json& s, const char* key, const std::string& path, int fallback) {
    if (!s.contains(key)) return fallback;
    const Json& v = s[key];
    const bool integral = v.is_number_integer() ||
                          (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
    if (!integral || v.get<double>() < 0) {
      FailAt(path + "/" + key, "'", key, "' must be a non-negative integer, found ", v.dump());
    }
    if (v.get<double>() > kGrammarMaxRepeat) {
      FailAt(path + "/" + key, "'", key, "' is ", v.dump(), ", above the supported limit of ",
             kGrammarMaxRepeat);
    }
    return int(v.get<double>());
  }

  // "{min,max}" / "{min,}" / "*" etc. for a GBNF repetition; max < 0 = unbounded.
  static std::string RepeatSuffix(int min, int max) {
    if (max < 0) return min == 0 ? "*" : min == 1 ? "+" : "{" + std::to_string(min) + ",}";
    if (min == max) return "{" + std::to_string(min) + "}";
    return "{" + std::to_string(min) + "," + std::to_string(max) + "}";
  }

  // ---- schemas

  std::string Compile(const Json& s, const std::string& path, int depth, const std::string& hint) {
    if (depth > kSchemaMaxDepth) {
      FailAt(path, "schema nested deeper than ", kSchemaMaxDepth, " levels");
    }
    if (++nodes_ > kSchemaMaxNodes) FailAt(path, "more than ", kSchemaMaxNodes, " subschemas");
    if (s.is_boolean()) {
      if (s.get<bool>()) return Use("json-value");
      FailAt(path, "schema 'false' matches no value");
    }
    if (!s.is_object()) {
      FailAt(path, "expected a schema (an object or true/false), found ", s.type_name());
    }
    for (const auto& [key, value] : s.items()) {
      if (UnsupportedKeywords().count(key) && !(key == "uniqueItems" && value == false)) {
        FailAt(path, "unsupported keyword '", key, "' (supported: ", kSupportedList, ")");
      }
    }
    const auto only = [&](const char* keyword) {
      for (const auto& [key, value] : s.items()) {
        if (key != keyword && SupportedKeywords().count(key)) {
          FailAt(path, "'", key, "' next to '", keyword,
                 "' is not supported (move it into the referenced or listed schemas)");
        }
      }
    };
    if (s.contains("$ref")) {
      only("$ref");
      return Ref(s["$ref"], path + "/$ref", depth);
    }
    if (s.contains("const")) return GbnfLiteral(s["const"].dump());
    if (s.contains("enum")) return Enum(s["enum"], path + "/enum", hint);
    for (const char* key : {"anyOf", "oneOf", "allOf"}) {
      if (!s.contains(key)) continue;
      only(key);
      const Json& list = s[key];
      const std::string list_path = path + "/" + key;
      if (!list.is_array() || list.empty()) {
        FailAt(list_path, "'", key, "' must be a non-empty array of schemas");
      }
      if (std::string(key) == "allOf") {
        if (list.size() != 1)
          FailAt(list_path, "'allOf' with more than one schema is not supported");
        return Compile(list[0], list_path + "/0", depth + 1, hint);
      }
      std::string body;
      for (size_t i = 0; i < list.size(); ++i) {
        if (i) body += " | ";
        body += Compile(list[i], list_path + "/" + std::to_string(i), depth + 1, hint);
      }
      return Define(hint, body);
    }
    const std::vector<std::string> types = Types(s, path);
    if (types.empty()) return Use("json-value");
    std::string body;
    for (size_t i = 0; i < types.size(); ++i) {
      if (i) body += " | ";
      body += TypeRule(types[i], s, path, depth, hint);
    }
    return types.size() == 1 ? body : Define(hint, body);
  }

  // The types a schema allows: from "type", else inferred from the keywords
  // present (generating only those types is a sound subset); empty = any.
  static std::vector<std::string> Types(const Json& s, const std::string& path) {
    static const std::set<std::string> kTypes = {"string", "number", "integer", "boolean",
                                                 "null",   "object", "array"};
    std::vector<std::string> types;
    if (s.contains("type")) {
      const Json& t = s["type"];
      const std::string tpath = path + "/type";
      if (t.is_string()) {
        types.push_back(t.get<std::string>());
      } else if (t.is_array() && !t.empty()) {
        for (const Json& e : t) {
          if (!e.is_string())
            FailAt(tpath, "'type' entries must be strings, found ", e.type_name());
          const std::string name = e.get<std::string>();
          if (std::find(types.begin(), types.end(), name) != types.end()) {
            FailAt(tpath, "type '", name, "' is listed twice");
          }
          types.push_back(name);
        }
      } else {
        FailAt(tpath, "'type' must be a string or a non-empty array of strings");
      }
      for (const std::string& name : types) {
        if (!kTypes.count(name)) {
          FailAt(tpath, "unknown type '", name,
                 "' (expected string, number, integer, boolean, null, object or array)");
        }
      }
      return types;
    }
    const auto has_any = [&](std::initializer_list<const char*> keys) {
      return std::any_of(keys.begin(), keys.end(), [&](const char* k) { return s.contains(k); });
    };
    if (has_any({"properties", "required", "additionalProperties"})) types.push_back("object");
    if (has_any({"items", "minItems", "maxItems"})) types.push_back("array");
    if (has_any({"minLength", "maxLength"})) types.push_back("string");
    if (has_any({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})) {
      types.push_back("number");
    }
    return types;
  }

  std::string TypeRule(const std::string& type, const Json& s, const std::string& path, int depth,
                       const std::string& hint) {
    if (type == "string") return StringRule(s, path, hint);
    if (type == "integer") return IntegerRule(s, path, hint);
    if (type == "number") {
      for (const char* key : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}) {
        if (s.contains(key)) {
          FailAt(path, "unsupported keyword '", key,
                 "' on type number (bounds are supported on integers only)");
        }
      }
      return Use("json-number");
    }
    if (type == "boolean") return Use("json-boolean");
    if (type == "null") return Use("json-null");
    if (type == "object") return ObjectRule(s, path, depth, hint);
    return ArrayRule(s, path, depth, hint);
  }

  std::string Enum(const Json& values, const std::string& path, const std::string& hint) {
    if (!values.is_array() || values.empty()) FailAt(path, "'enum' must be a non-empty array");
    std::string body;
    for (size_t i = 0; i < values.size(); ++i) {
      if (i) body += " | ";
      body += GbnfLiteral(values[i].dump());
    }
    return Define(hint, body);
  }

  std::string Ref(const Json& ref, const std::string& path, int depth) {
    if (!ref.is_string()) FailAt(path, "'$ref' must be a string");
    const std::string r = ref.get<std::string>();
    if (auto it = refs_.find(r); it != refs_.end()) return it->second;
    if (r.empty() || r[0] != '#') {
      FailAt(path, "$ref '", r, "' is not supported (only '#' and '#/...' local references)");
    }
    const Json* target = nullptr;
    try {
      const Json::json_pointer ptr(r.substr(1));
      if (root_.contains(ptr)) target = &root_.at(ptr);
    } catch (const nlohmann::json::exception&) {
    }
    if (target == nullptr) FailAt(path, "$ref '", r, "' does not resolve in this schema");
    const size_t slash = r.rfind('/');
    const std::string last = slash == std::string::npos ? "root" : r.substr(slash + 1);
    const std::string name = NewName("ref-" + last);
    refs_[r] = name;  // before compiling: the target may refer to itself
    const std::string body = Compile(*target, r, depth + 1, last);
    rules_.emplace_back(name, body);
    return name;
  }

  std::string StringRule(const Json& s, const std::string& path, const std::string& hint) {
    if (!s.contains("minLength") && !s.contains("maxLength")) return Use("json-string");
    const int min = Count(s, "minLength", path, 0);
    const int max = Count(s, "maxLength", path, -1);
    if (max >= 0 && max < min) FailAt(path, "maxLength ", max, " < minLength ", min);
    return Define(hint, "\"\\\"\" " + Use("json-char") + RepeatSuffix(min, max) + " \"\\\"\"");
  }

  static std::optional<double> Bound(const Json& s, const char* key, const std::string& path) {
    if (!s.contains(key)) return std::nullopt;
    const Json& v = s[key];
    if (!v.is_number())
      FailAt(path + "/" + key, "'", key, "' must be a number, found ", v.type_name());
    return std::clamp(v.get<double>(), -1e17, 1e17);  // beyond any generated magnitude
  }

  std::string IntegerRule(const Json& s, const std::string& path, const std::string& hint) {
    std::optional<int64_t> lo, hi;
    const auto raise_lo = [&](double v) { lo = std::max(lo.value_or(INT64_MIN), int64_t(v)); };
    const auto lower_hi = [&](double v) { hi = std::min(hi.value_or(INT64_MAX), int64_t(v)); };
    if (auto v = Bound(s, "minimum", path)) raise_lo(std::ceil(*v));
    if (auto v = Bound(s, "exclusiveMinimum", path)) raise_lo(std::floor(*v) + 1);
    if (auto v = Bound(s, "maximum", path)) lower_hi(std::floor(*v));
    if (auto v = Bound(s, "exclusiveMaximum", path)) lower_hi(std::ceil(*v) - 1);
    if (!lo && !hi) return Use("json-integer");
    const std::string expr = IntRangeGbnf(lo, hi);
    if (expr.empty()) {
      FailAt(path, "no integer of at most ", kIntRangeMaxDigits,
             " digits satisfies the minimum/maximum bounds");
    }
    return Define(hint, expr);
  }

  std::string ArrayRule(const Json& s, const std::string& path, int depth,
                        const std::string& hint) {
    int min = Count(s, "minItems", path, 0);
    int max = Count(s, "maxItems", path, -1);
    std::string item;
    if (s.contains("items")) {
      const Json& items = s["items"];
      if (items.is_array()) {
        FailAt(path + "/items", "'items' as an array (tuple form) is not supported");
      }
      if (items == false) {
        max = 0;
      } else {
        item = Compile(items, path + "/items", depth + 1, hint + "-item");
      }
    }
    if (max >= 0 && max < min)
      FailAt(path, "maxItems ", max, " < minItems ", min, ": no array matches");
    if (max == 0) return Define(hint, "\"[\" " + Use("ws") + " \"]\"");
    if (item.empty()) item = Use("json-value");
    const std::string elem = Define(hint + "-elem", item + " " + Use("ws"));
    const int rest_min = std::max(min - 1, 0), rest_max = max < 0 ? -1 : max - 1;
    std::string body = elem;
    if (rest_max != 0) body += " ( \",\" ws " + elem + " )" + RepeatSuffix(rest_min, rest_max);
    if (min == 0) body = "( " + body + " )?";
    return Define(hint, "\"[\" ws " + body + " \"]\"");
  }

  std::string ObjectRule(const Json& s, const std::string& path, int depth,
                         const std::string& hint) {
    std::vector<Prop> props;
    if (s.contains("properties")) {
      const Json& p = s["properties"];
      if (!p.is_object()) FailAt(path + "/properties", "'properties' must be an object");
      for (const auto& [key, value] : p.items()) props.push_back({key, &value, false});
    }
    if (s.contains("required")) {
      const Json& req = s["required"];
      if (!req.is_array()) FailAt(path + "/required", "'required' must be an array of strings");
      for (const Json& r : req) {
        if (!r.is_string()) FailAt(path + "/required", "'required' entries must be strings");
        const std::string key = r.get<std::string>();
        auto it =
            std::find_if(props.begin(), props.end(), [&](const Prop& p) { return p.key == key; });
        if (it == props.end()) {
          props.push_back({key, nullptr, true});
        } else {
          it->required = true;
        }
      }
    }
    // Extra keys: absent -> allowed only when no "properties" are given.
    static const Json kAny = true;
    const Json* extra = &kAny;  // schema of extra values
    bool extras = !s.contains("properties");
    if (s.contains("additionalProperties")) {
      const Json& a = s["additionalProperties"];
      if (!a.is_boolean() && !a.is_object()) {
        FailAt(path + "/additionalProperties",
               "'additionalProperties' must be a boolean or a schema");
      }
      extras = !(a == false);
      extra = &a;
    }
    if (props.empty() && extras && extra->is_boolean()) return Use("json-object");
    if (props.empty() && !extras) return Define(hint, "\"{\" " + Use("ws") + " \"}\"");

    Use("ws");
    std::vector<std::string> kv(props.size());
    for (size_t i = 0; i < props.size(); ++i) {
      const Prop& p = props[i];
      const std::string value =
          p.schema ? Compile(*p.schema, path + "/properties/" + PointerToken(p.key), depth + 1,
                             hint + "-" + p.key)
                   : Use("json-value");
      kv[i] = Define(hint + "-" + p.key + "-kv",
                     GbnfLiteral(Json(p.key).dump()) + " ws \":\" ws " + value + " ws");
    }
    std::string extra_kv;
    if (extras) {
      const std::string value =
          extra->is_boolean()
              ? Use("json-value")
              : Compile(*extra, path + "/additionalProperties", depth + 1, hint + "-extra");
      extra_kv =
          Define(hint + "-extra-kv", OtherKey(props, hint) + " ws \":\" ws " + value + " ws");
    }
    // Property i onward, in schema order. s_i: nothing emitted yet; t_i: a
    // property was emitted, so each next one starts with a comma.
    const size_t n = props.size();
    std::vector<std::string> s_name(n + 1), t_name(n + 1);
    for (size_t i = 0; i <= n; ++i) {
      s_name[i] = NewName(hint + "-s" + std::to_string(i));
      t_name[i] = NewName(hint + "-t" + std::to_string(i));
    }
    rules_.emplace_back(t_name[n], extras ? "( \",\" ws " + extra_kv + " )*" : "\"\"");
    rules_.emplace_back(s_name[n], extras ? extra_kv + " " + t_name[n] + " | \"\"" : "\"\"");
    for (size_t i = n; i-- > 0;) {
      const bool req = props[i].required;
      rules_.emplace_back(t_name[i], "\",\" ws " + kv[i] + " " + t_name[i + 1] +
                                         (req ? "" : " | " + t_name[i + 1]));
      rules_.emplace_back(s_name[i],
                          kv[i] + " " + t_name[i + 1] + (req ? "" : " | " + s_name[i + 1]));
    }
    return Define(hint, "\"{\" ws " + s_name[0] + " \"}\"");
  }

  // A quoted key that is none of the listed property names: a trie over the
  // names' characters, where each node may leave the trie by any other
  // character (then anything may follow) and may end only if it is not a
  // listed name. Extra keys are written without escapes, so the raw text is
  // the key and comparing characters is exact.
  std::string OtherKey(const std::vector<Prop>& props, const std::string& hint) {
    struct Node {
      std::map<uint32_t, size_t> next;  // character -> child node
      bool listed = false;              // a listed name ends here
    };
    std::vector<Node> trie(1);
    for (const Prop& p : props) {
      const std::vector<uint32_t> cps = DecodeUtf8(p.key);
      // A name with a character that must be escaped can never equal an
      // unescaped key: no need to exclude it.
      if (std::any_of(cps.begin(), cps.end(),
                      [](uint32_t c) { return c < 0x20 || c == '"' || c == '\\'; })) {
        continue;
      }
      size_t at = 0;
      for (uint32_t c : cps) {
        auto it = trie[at].next.find(c);
        if (it == trie[at].next.end()) {
          trie.emplace_back();
          it = trie[at].next.emplace(c, trie.size() - 1).first;
        }
        at = it->second;
      }
      trie[at].listed = true;
    }
    const std::string rest = Use("json-key-char") + "*";
    std::vector<std::string> names(trie.size());
    for (size_t i = 0; i < trie.size(); ++i) names[i] = NewName(hint + "-key" + std::to_string(i));
    for (size_t i = 0; i < trie.size(); ++i) {
      std::string other = "[^\"\\\\\\x00-\\x1F";
      std::string body;
      for (const auto& [c, child] : trie[i].next) {
        other += CodepointEscape(c);
        const std::string lit = CodepointEscape(c);
        body.append("\"").append(lit).append("\" ").append(names[child]).append(" | ");
      }
      body += other + "] " + rest;
      if (!trie[i].listed) body += " | \"\"";
      rules_.emplace_back(names[i], body);
    }
    return "\"\\\"\" " + names[0] + " \"\\\"\"";
  }

  const Json& root_;
  std::vector<std::pair<std::string, std::string>> rules_;  // (name, body) in creation order
  std::set<std::string> names_;                             // every rule name in use
  std::set<std::string> used_;                              // primitives referenced
  std::map<std::string, std::string> refs_;                 // $ref -> rule name
  int nodes_ = 0;
};

}  // namespace

std::string JsonSchemaToGbnf(const nlohmann::ordered_json& schema) {
  try {
    return SchemaCompiler(schema).Run();
  } catch (const nlohmann::json::exception& e) {
    // E.g. a string that is not UTF-8 in a schema built in code (dump() refuses it).
    Fail("json_schema: ", e.what());
  }
}

Grammar CompileJsonSchema(const nlohmann::ordered_json& schema) {
  const std::string gbnf = JsonSchemaToGbnf(schema);
  try {
    return ParseGbnf(gbnf, "json_schema grammar");
  } catch (const Error& e) {
    // E.g. a $ref cycle with no object or array in between (left recursion),
    // or a grammar above the size limits.
    Fail("json_schema: the schema compiles to an unusable grammar: ", e.what());
  }
}

Grammar CompileJsonSchemaText(std::string_view schema_json) {
  nlohmann::ordered_json schema;
  try {
    schema = nlohmann::ordered_json::parse(schema_json);
  } catch (const nlohmann::json::exception& e) {
    Fail("json_schema: the schema is not valid JSON: ", e.what());
  }
  return CompileJsonSchema(schema);
}

Grammar JsonObjectGrammar() {
  return CompileJsonSchema(nlohmann::ordered_json{{"type", "object"}});
}

}  // namespace rg
