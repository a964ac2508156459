// JSON Schema -> grammar, for structured output (response_format json_schema
// / json_object). The schema is translated to GBNF text (JsonSchemaToGbnf,
// useful for debugging) and parsed by the GBNF parser, so both front ends
// share one grammar representation.
//
// Supported subset (see docs/STRUCTURED_OUTPUT.md):
//   type         "string" "number" "integer" "boolean" "null" "object" "array",
//                or an array of these (alternatives)
//   enum, const  any JSON values, emitted compactly (take precedence over type)
//   object       properties (emitted in schema order; JSON text or
//                ordered_json keeps that order), required (must appear;
//                optional ones may be skipped), additionalProperties:
//                  absent -> only the listed properties, if `properties` is
//                            given; otherwise any properties (any object)
//                  false  -> only the listed properties
//                  true / schema -> listed ones, then any other keys (never a
//                            listed name; written without escapes) whose
//                            values match the schema
//   array        items (a schema), minItems, maxItems (<= 1000)
//   string       minLength, maxLength (<= 1000, counted in characters)
//   integer      minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers)
//   anyOf, oneOf alternatives (oneOf is treated as anyOf: exclusivity is not
//                enforced, so make the branches disjoint)
//   allOf        with exactly one schema
//   $ref         "#" or "#/..." JSON pointers into the same document
//                (e.g. #/$defs/x, #/definitions/x); recursion is allowed
//   true / {}    any JSON value; false is an error (nothing can match)
// Ignored (annotations): title, description, default, examples, format,
//   $schema, $id, $comment, $anchor, deprecated, readOnly, writeOnly,
//   contentEncoding, contentMediaType, $defs / definitions (used via $ref),
//   and any keyword JSON Schema does not define (validators ignore them too).
// Any other JSON Schema keyword (pattern, minimum on numbers, uniqueItems,
// prefixItems, not, if/then/else, minProperties, patternProperties, ...)
// throws rg::Error "json_schema: unsupported keyword 'pattern' at
// #/properties/name", as does a malformed value of a supported keyword.
//
// Output format: the value starts after optional whitespace and ends as soon
// as the top-level value closes (no trailing whitespace), so the matcher's
// MustEnd() turns true exactly then. Between tokens the grammar allows one
// space or a newline plus up to 40 spaces/tabs (pretty-printing), nothing
// longer, so a model cannot loop on whitespace. Numbers: at most 16 integer
// digits, 16 fraction digits and 2 exponent digits (every number is a finite
// double). Strings are valid UTF-8; \u escapes never encode surrogates.
//
// Limits: nesting depth kSchemaMaxDepth, kSchemaMaxNodes subschemas, and the
// grammar limits of grammar_builder.h.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "sampling/grammar/grammar.h"

namespace rg {

inline constexpr int kSchemaMaxDepth = 64;
inline constexpr int kSchemaMaxNodes = 10000;

// GBNF text (start rule "root") for a schema. Throws rg::Error.
std::string JsonSchemaToGbnf(const nlohmann::ordered_json& schema);

// The grammar of a schema given as JSON text (parse errors are rg::Error).
Grammar CompileJsonSchemaText(std::string_view schema_json);
Grammar CompileJsonSchema(const nlohmann::ordered_json& schema);

// response_format {"type": "json_object"}: any JSON object.
Grammar JsonObjectGrammar();

}  // namespace rg
