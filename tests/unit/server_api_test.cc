// The OpenAI request layer of `rgemma serve` (server/request.h,
// completions.h, chat_completions.h, tokenize.h): JSON parsing, field
// validation, prompt forms, chat rendering, error shape.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "server/chat_completions.h"
#include "server/completions.h"
#include "server/tokenize.h"
#include "tokenizer/encode_text.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/grammar_vocab.h"

namespace rg::server {
namespace {

const std::string kTokenizerPath = std::string(RG_SOURCE_DIR) + "/models/tokenizer/tokenizer.model";

class ServerApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tok_ = Tokenizer::Load(kTokenizerPath).release();
    trie_ = new std::shared_ptr<const TokenTrie>(std::make_shared<const TokenTrie>(MakeGrammarVocab(*tok_)));
  }
  static void TearDownTestSuite() {
    delete tok_;
    tok_ = nullptr;
    delete trie_;
    trie_ = nullptr;
  }
  void SetUp() override {
    config_.vocab_size = 256000;
    text_.id = "m";
    text_.config = &config_;
    text_.tokenizer = tok_;
    text_.grammar_trie = *trie_;
    ids_only_config_.vocab_size = 512;
    ids_.id = "tiny";
    ids_.config = &ids_only_config_;
  }

  ParsedRequest Completion(const std::string& body, const ModelInfo* m = nullptr) {
    return ParseCompletionRequest(ParseJsonBody(body, limits_), m ? *m : text_, limits_);
  }
  ParsedRequest Chat(const std::string& body, const ModelInfo* m = nullptr) {
    return ParseChatRequest(ParseJsonBody(body, limits_), m ? *m : text_, limits_);
  }
  // The ApiError a completions body raises (status 0 if none).
  ApiError CompletionError(const std::string& body, const ModelInfo* m = nullptr) {
    try {
      Completion(body, m);
    } catch (const ApiError& e) {
      return e;
    }
    return ApiError(0, "no error");
  }
  ApiError ChatError(const std::string& body, const ModelInfo* m = nullptr) {
    try {
      Chat(body, m);
    } catch (const ApiError& e) {
      return e;
    }
    return ApiError(0, "no error");
  }

  static Tokenizer* tok_;
  static std::shared_ptr<const TokenTrie>* trie_;
  Config config_, ids_only_config_;
  ModelInfo text_, ids_;
  ServerLimits limits_;
};
Tokenizer* ServerApiTest::tok_ = nullptr;
std::shared_ptr<const TokenTrie>* ServerApiTest::trie_ = nullptr;

TEST_F(ServerApiTest, MalformedJsonIs400) {
  for (const char* body : {"", "{", "{\"prompt\": }", "nul", "{\"a\":1,}", "\xff\xfe"}) {
    try {
      ParseJsonBody(body, limits_);
      FAIL() << "accepted: " << body;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400) << body;
      EXPECT_NE(e.message.find("not valid JSON"), std::string::npos) << e.message;
    }
  }
}

TEST_F(ServerApiTest, BodyMustBeAnObject) {
  for (const char* body : {"[]", "1", "\"x\"", "null", "true"}) {
    try {
      ParseJsonBody(body, limits_);
      FAIL() << "accepted: " << body;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
      EXPECT_NE(e.message.find("JSON object"), std::string::npos) << e.message;
    }
  }
}

TEST_F(ServerApiTest, DeepNestingIsRefused) {
  const std::string deep = "{\"prompt\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  try {
    ParseJsonBody(deep, limits_);
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_NE(e.message.find("nested"), std::string::npos) << e.message;
  }
}

TEST_F(ServerApiTest, ErrorJsonHasTheOpenAIShape) {
  const json j = ErrorJson(ApiError(400, "temperature: bad", "temperature"));
  ASSERT_TRUE(j.contains("error"));
  EXPECT_EQ(j["error"]["message"], "temperature: bad");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "temperature");
  EXPECT_TRUE(j["error"]["code"].is_null());
  EXPECT_EQ(ErrorJson(ApiError(503, "busy"))["error"]["type"], "server_error");
}

TEST_F(ServerApiTest, TextPromptGetsBosAndOpenAIDefaults) {
  const ParsedRequest r = Completion(R"({"model":"x","prompt":"Hello world"})");
  ASSERT_EQ(r.prompts.size(), 1u);
  std::vector<int32_t> expect = {2};
  for (int id : tok_->Encode("Hello world")) expect.push_back(id);
  EXPECT_EQ(r.prompts[0], expect);
  EXPECT_EQ(r.prompt_texts[0], "Hello world");
  EXPECT_EQ(r.max_tokens, 16);
  EXPECT_EQ(r.n, 1);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 1.0f);
  EXPECT_EQ(r.sampling.top_k, 0);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.0f);
  EXPECT_FALSE(r.sampling.penalties_enabled());
  EXPECT_FALSE(r.seed_given);
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.logprobs, -1);
  EXPECT_FALSE(r.echo);

  const ParsedRequest nobos = Completion(R"({"prompt":"Hello","add_special_tokens":false})");
  EXPECT_NE(nobos.prompts[0][0], 2);
}

TEST_F(ServerApiTest, PromptForms) {
  EXPECT_EQ(Completion(R"({"prompt":[2,17,5]})").prompts, (std::vector<std::vector<int32_t>>{{2, 17, 5}}));
  EXPECT_EQ(Completion(R"({"prompt":[[2,3],[4]]})").prompts, (std::vector<std::vector<int32_t>>{{2, 3}, {4}}));
  const ParsedRequest batch = Completion(R"({"prompt":["a","b c"],"n":2})");
  EXPECT_EQ(batch.prompts.size(), 2u);
  EXPECT_EQ(batch.sequences(), 4);
  EXPECT_EQ(batch.prompt_texts[1], "b c");
  // Token-id prompts are echoed as their decoded text.
  EXPECT_EQ(Completion(R"({"prompt":[2,17]})").prompt_texts[0], tok_->Decode({2, 17}));
}

TEST_F(ServerApiTest, BadPromptsAre400NamingPrompt) {
  for (const char* body : {R"({})", R"({"prompt":null})", R"({"prompt":[]})", R"({"prompt":[[]]})",
                           R"({"prompt":5})", R"({"prompt":{"a":1}})", R"({"prompt":[1,"a"]})",
                           R"({"prompt":["a",[1]]})", R"({"prompt":[1.5]})", R"({"prompt":[-1]})",
                           R"({"prompt":[256000]})", R"({"prompt":[true]})", R"({"prompt":[null]})"}) {
    const ApiError e = CompletionError(body);
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.param, "prompt") << body << ": " << e.message;
  }
  EXPECT_NE(CompletionError(R"({"prompt":[256000]})").message.find("vocabulary"), std::string::npos);
}

TEST_F(ServerApiTest, PromptLengthIsBounded) {
  limits_.max_prompt_tokens = 4;
  EXPECT_EQ(CompletionError(R"({"prompt":[1,2,3,4]})").status, 0);
  const ApiError e = CompletionError(R"({"prompt":[1,2,3,4,5]})");
  EXPECT_EQ(e.status, 400);
  EXPECT_NE(e.message.find("limit of 4"), std::string::npos) << e.message;
  EXPECT_EQ(CompletionError(R"({"prompt":"one two three four five six"})").status, 400);
  limits_.max_prompts = 2;
  EXPECT_EQ(CompletionError(R"({"prompt":[[1],[2],[3]]})").status, 400);
}

TEST_F(ServerApiTest, ModelWithoutTokenizerTakesIdsOnly) {
  const ParsedRequest r = Completion(R"({"prompt":[2,5,7],"max_tokens":3})", &ids_);
  EXPECT_EQ(r.prompts[0], (std::vector<int32_t>{2, 5, 7}));
  EXPECT_EQ(r.prompt_texts[0], "");
  for (const char* body : {R"({"prompt":"hello"})", R"({"prompt":["a"]})"}) {
    const ApiError e = CompletionError(body, &ids_);
    EXPECT_EQ(e.status, 400);
    EXPECT_NE(e.message.find("no tokenizer"), std::string::npos) << e.message;
  }
  EXPECT_EQ(CompletionError(R"({"prompt":[2],"stop":"x"})", &ids_).param, "stop");
  EXPECT_EQ(ChatError(R"({"messages":[{"role":"user","content":"hi"}]})", &ids_).status, 400);
  EXPECT_EQ(CompletionError(R"({"prompt":[600]})", &ids_).status, 400);  // vocabulary of 512
}

TEST_F(ServerApiTest, WrongTypesAre400NamingTheField) {
  struct Case {
    const char* body;
    const char* param;
  } cases[] = {
      {R"({"prompt":[1],"temperature":"hot"})", "temperature"},
      {R"({"prompt":[1],"temperature":-1})", "temperature"},
      {R"({"prompt":[1],"temperature":2.5})", "temperature"},
      {R"({"prompt":[1],"top_p":1.5})", "top_p"},
      {R"({"prompt":[1],"top_k":"5"})", "top_k"},
      {R"({"prompt":[1],"min_p":-0.1})", "min_p"},
      {R"({"prompt":[1],"max_tokens":"16"})", "max_tokens"},
      {R"({"prompt":[1],"max_tokens":1.5})", "max_tokens"},
      {R"({"prompt":[1],"max_tokens":-1})", "max_tokens"},
      {R"({"prompt":[1],"max_tokens":100000000})", "max_tokens"},
      {R"({"prompt":[1],"n":0})", "n"},
      {R"({"prompt":[1],"n":1000})", "n"},
      {R"({"prompt":[1],"stream":"yes"})", "stream"},
      {R"({"prompt":[1],"echo":1})", "echo"},
      {R"({"prompt":[1],"logprobs":21})", "logprobs"},
      {R"({"prompt":[1],"logprobs":true})", "logprobs"},
      {R"({"prompt":[1],"seed":"1"})", "seed"},
      {R"({"prompt":[1],"seed":1.5})", "seed"},
      {R"({"prompt":[1],"stop":5})", "stop"},
      {R"({"prompt":[1],"stop":["a",5]})", "stop"},
      {R"({"prompt":[1],"presence_penalty":3})", "presence_penalty"},
      {R"({"prompt":[1],"frequency_penalty":"x"})", "frequency_penalty"},
      {R"({"prompt":[1],"repetition_penalty":0})", "repetition_penalty"},
      {R"({"prompt":[1],"model":5})", "model"},
      {R"({"prompt":[1],"stream_options":{"include_usage":1}})", "include_usage"},
      {R"({"prompt":[1],"logit_bias":{"abc":10}})", "logit_bias"},
      {R"({"prompt":[1],"logit_bias":{"256000":1}})", "logit_bias"},
      {R"({"prompt":[1],"logit_bias":{"-1":1}})", "logit_bias"},
      {R"({"prompt":[1],"logit_bias":{"5":101}})", "logit_bias"},
      {R"({"prompt":[1],"logit_bias":{"5":"x"}})", "logit_bias"},
      {R"({"prompt":[1],"logit_bias":[[5,1]]})", "logit_bias"},
      {R"({"prompt":[1],"n_predict":-2})", "n_predict"},
      {R"({"prompt":[1],"max_tokens":4,"n_predict":4})", "n_predict"},
      {R"({"prompt":[1],"suffix":"x"})", "suffix"},
      {R"({"prompt":[1],"best_of":3})", "best_of"},
      {R"({"prompt":[1],"stop_token_ids":[999999]})", "stop_token_ids"},
      {R"({"prompt":[1],"ignore_eos":"true"})", "ignore_eos"},
  };
  for (const Case& c : cases) {
    const ApiError e = CompletionError(c.body);
    EXPECT_EQ(e.status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body << " -> " << e.message;
    EXPECT_FALSE(e.message.empty());
  }
}

TEST_F(ServerApiTest, UnknownFieldsAreIgnoredAndListed) {
  // Clients send extras (llama.cpp's web UI, LangChain, ...): ignored, and
  // named (with their place) for the request's log line.
  const ParsedRequest r = Completion(R"({"prompt":[1],"temprature":0.5,"stream_options":{"bogus":true}})");
  EXPECT_EQ(r.ignored_fields, (std::vector<std::string>{"stream_options.bogus", "temprature"}));
  EXPECT_FLOAT_EQ(r.sampling.temperature, 1.0f);  // the misspelt field did nothing
  const ParsedRequest c = Chat(R"({"messages":[{"role":"user","content":"hi","foo":1}],"foo":1,"echo":true})");
  EXPECT_EQ(c.ignored_fields, (std::vector<std::string>{"messages[0].foo", "foo", "echo"}));
  // Known fields keep their type checks.
  EXPECT_EQ(CompletionError(R"({"prompt":[1],"frobnicate":1,"temperature":"hot"})").param, "temperature");
  // Harmless OpenAI fields are accepted, and not listed.
  EXPECT_TRUE(Completion(R"({"prompt":[1],"user":"u","logit_bias":{},"best_of":1,"suffix":null})").ignored_fields.empty());
}

TEST_F(ServerApiTest, MaxTokensAliasesAndTheServerLimit) {
  EXPECT_EQ(Completion(R"({"prompt":[1],"n_predict":7})").max_tokens, 7);  // llama-server's name
  EXPECT_EQ(Chat(R"({"messages":[{"role":"user","content":"a"}],"n_predict":7})").max_tokens, 7);
  EXPECT_EQ(Completion(R"({"prompt":[1],"n_predict":-1})").max_tokens, limits_.max_tokens);  // until a stop
  // Only --max-tokens-limit bounds it (by default far above what clients ask
  // for), and the error says so.
  EXPECT_EQ(Completion(R"({"prompt":[1],"max_tokens":1000000})").max_tokens, 1000000);
  limits_.max_tokens = 100000;
  EXPECT_EQ(Completion(R"({"prompt":[1],"max_tokens":100000})").max_tokens, 100000);
  const ApiError e = CompletionError(R"({"prompt":[1],"max_tokens":100001})");
  EXPECT_EQ(e.param, "max_tokens");
  EXPECT_NE(e.message.find("--max-tokens-limit"), std::string::npos) << e.message;
  EXPECT_EQ(ChatError(R"({"messages":[{"role":"user","content":"a"}],"max_tokens":2,"max_completion_tokens":2})").param,
            "max_completion_tokens");
}

TEST_F(ServerApiTest, LogitBiasIsParsedOnBothEndpoints) {
  const ParsedRequest r = Completion(R"({"prompt":[1],"logit_bias":{"5":-100,"17":2.5}})");
  ASSERT_EQ(r.logit_bias.size(), 2u);
  EXPECT_EQ(r.logit_bias[0].id, 5);
  EXPECT_FLOAT_EQ(r.logit_bias[0].bias, -100.0f);
  EXPECT_EQ(r.logit_bias[1].id, 17);
  EXPECT_FLOAT_EQ(r.logit_bias[1].bias, 2.5f);
  EXPECT_EQ(Chat(R"({"messages":[{"role":"user","content":"a"}],"logit_bias":{"9":1}})").logit_bias.size(), 1u);
  // Ids are checked against the model's vocabulary.
  EXPECT_EQ(CompletionError(R"({"prompt":[1],"logit_bias":{"512":1}})", &ids_).param, "logit_bias");
  EXPECT_EQ(CompletionError(R"({"prompt":[1],"logit_bias":{"511":1}})", &ids_).status, 0);
}

TEST_F(ServerApiTest, StructuredOutputFieldsCompileAGrammar) {
  const std::string user = R"("messages":[{"role":"user","content":"a"}])";
  EXPECT_TRUE(Chat("{" + user + R"(,"response_format":{"type":"json_object"}})").grammar);
  EXPECT_FALSE(Chat("{" + user + R"(,"response_format":{"type":"text"}})").grammar);
  EXPECT_TRUE(Chat("{" + user + R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x","strict":true,)"
                   R"("schema":{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}}}})")
                  .grammar);
  // Both endpoints; llama-server's grammar (GBNF) and json_schema fields.
  EXPECT_TRUE(Completion(R"({"prompt":"x","response_format":{"type":"json_object"}})").grammar);
  EXPECT_TRUE(Completion(R"({"prompt":"x","grammar":"root ::= \"yes\" | \"no\""})").grammar);
  EXPECT_TRUE(Completion(R"({"prompt":"x","json_schema":{"type":"boolean"}})").grammar);
  EXPECT_FALSE(Completion(R"({"prompt":"x","grammar":""})").grammar);
}

TEST_F(ServerApiTest, StructuredOutputErrorsAre400NamingTheFieldAndTheKeyword) {
  const std::string user = R"("messages":[{"role":"user","content":"a"}])";
  ApiError e = ChatError("{" + user + R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x",)"
                         R"("schema":{"type":"object","properties":{"name":{"type":"string","pattern":"^a"}}}}}})");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param, "response_format");
  EXPECT_NE(e.message.find("unsupported keyword 'pattern'"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("#/properties/name"), std::string::npos) << e.message;
  e = CompletionError(R"({"prompt":"x","grammar":"root ::= undefined-rule"})");
  EXPECT_EQ(e.param, "grammar");
  EXPECT_NE(e.message.find("undefined"), std::string::npos) << e.message;
  EXPECT_EQ(CompletionError(R"({"prompt":"x","grammar":5})").param, "grammar");
  EXPECT_EQ(ChatError("{" + user + R"(,"response_format":{"type":"json_schema"}})").param, "response_format");
  EXPECT_EQ(ChatError("{" + user + R"(,"response_format":"json"})").param, "response_format");
  // One constraint at a time.
  e = CompletionError(R"({"prompt":"x","response_format":{"type":"json_object"},"grammar":"root ::= \"a\""})");
  EXPECT_EQ(e.param, "grammar");
  EXPECT_NE(e.message.find("only one"), std::string::npos) << e.message;
  // A model without a tokenizer has no token strings to constrain.
  e = CompletionError(R"({"prompt":[1],"response_format":{"type":"json_object"}})", &ids_);
  EXPECT_EQ(e.param, "response_format");
  EXPECT_NE(e.message.find("tokenizer"), std::string::npos) << e.message;
}

TEST_F(ServerApiTest, SeveralSystemMessagesAreJoinedInOrder) {
  const ParsedRequest two = Chat(
      R"({"messages":[{"role":"system","content":"Be brief."},{"role":"developer","content":"Use French."},)"
      R"({"role":"user","content":"Hi"}]})");
  const ParsedRequest one = Chat(R"({"messages":[{"role":"user","content":"Be brief.\n\nUse French.\n\nHi"}]})");
  EXPECT_EQ(two.prompts, one.prompts);
  // A system message later on goes with the next user turn.
  const ParsedRequest later = Chat(
      R"({"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"},)"
      R"({"role":"system","content":"Now be rude."},{"role":"user","content":"How are you?"}]})");
  const ParsedRequest folded = Chat(
      R"({"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"},)"
      R"({"role":"user","content":"Now be rude.\n\nHow are you?"}]})");
  EXPECT_EQ(later.prompts, folded.prompts);
}

TEST_F(ServerApiTest, NullMeansDefault) {
  const ParsedRequest r = Completion(R"({"prompt":[1],"temperature":null,"max_tokens":null,"stop":null,"n":null})");
  EXPECT_FLOAT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_EQ(r.max_tokens, 16);
  EXPECT_TRUE(r.stop.empty());
}

TEST_F(ServerApiTest, SamplingFieldsAndExtensions) {
  const ParsedRequest r = Completion(
      R"({"prompt":[1],"temperature":0,"top_p":0.5,"top_k":7,"min_p":0.1,"presence_penalty":0.5,)"
      R"("frequency_penalty":-0.5,"repetition_penalty":1.1,"repeat_last_n":32,"seed":-3,"stop":["\n","x"],)"
      R"("stop_token_ids":[1,107],"stream":true,"stream_options":{"include_usage":true},"logprobs":5,"echo":true,)"
      R"("ignore_eos":true,"return_tokens":true,"max_tokens":0})");
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.0f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.5f);
  EXPECT_EQ(r.sampling.top_k, 7);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.1f);
  EXPECT_FLOAT_EQ(r.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(r.sampling.repeat_penalty, 1.1f);
  EXPECT_EQ(r.sampling.repeat_last_n, 32);
  EXPECT_TRUE(r.seed_given);
  EXPECT_EQ(r.sampling.seed, uint64_t(int64_t(-3)));
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n", "x"}));
  EXPECT_EQ(r.stop_ids, (std::vector<int32_t>{1, 107}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.logprobs, 5);
  EXPECT_TRUE(r.echo);
  EXPECT_TRUE(r.prompt_logprobs());
  EXPECT_TRUE(r.ignore_eos);
  EXPECT_TRUE(r.return_tokens);
  EXPECT_EQ(r.max_tokens, 0);
  // top_p 0 keeps only the most likely token; vLLM's top_k -1 means off.
  EXPECT_EQ(Completion(R"({"prompt":[1],"top_p":0})").sampling.top_k, 1);
  EXPECT_EQ(Completion(R"({"prompt":[1],"top_k":-1})").sampling.top_k, 0);
  EXPECT_EQ(Completion(R"({"prompt":[1],"stop":"END"})").stop, (std::vector<std::string>{"END"}));
}

TEST_F(ServerApiTest, ChatRendersTheGemmaTemplate) {
  const ParsedRequest r = Chat(
      R"({"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},)"
      R"({"role":"assistant","content":"Hello!"},{"role":"user","content":[{"type":"text","text":"How are you?"}]}]})");
  const std::vector<ChatMessage> msgs = {
      {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "How are you?"}};
  std::vector<int32_t> expect;
  for (int id : ApplyChatTemplate(*tok_, msgs, true, true)) expect.push_back(id);
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0], expect);
  EXPECT_EQ(r.endpoint, Endpoint::kChat);
  EXPECT_EQ(r.max_tokens, limits_.default_chat_max_tokens);
  // Generation stops at <end_of_turn>.
  EXPECT_NE(std::find(r.stop_ids.begin(), r.stop_ids.end(), tok_->end_of_turn_id()), r.stop_ids.end());
  // "developer" is OpenAI's new name for system.
  EXPECT_EQ(Chat(R"({"messages":[{"role":"developer","content":"Be brief."},{"role":"user","content":"Hi"}]})").prompts,
            Chat(R"({"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]})").prompts);
}

TEST_F(ServerApiTest, ChatErrors) {
  struct Case {
    const char* body;
    const char* param;
  } cases[] = {
      {R"({})", "messages"},
      {R"({"messages":[]})", "messages"},
      {R"({"messages":"hi"})", "messages"},
      {R"({"messages":[5]})", "messages"},
      {R"({"messages":[{"content":"hi"}]})", "messages"},
      {R"({"messages":[{"role":"user"}]})", "messages"},
      {R"({"messages":[{"role":"user","content":5}]})", "messages"},
      {R"({"messages":[{"role":"assistant","content":"x"}]})", "messages"},          // must start with user
      {R"({"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]})", "messages"},  // alternation
      {R"({"messages":[{"role":"wizard","content":"a"}]})", "messages"},
      {R"({"messages":[{"role":"user","content":"a"},{"role":"system","content":"b"}]})", "messages"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})", "messages"},
      {R"({"messages":[{"role":"user","content":"a"}],"max_tokens":0})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"a"}],"top_logprobs":3})", "top_logprobs"},
      {R"({"messages":[{"role":"user","content":"a"}],"logprobs":5})", "logprobs"},
      {R"({"messages":[{"role":"user","content":"a"}],"tools":[{"type":"function"}]})", "tools"},
      {R"({"messages":[{"role":"user","content":"a"}],"response_format":{"type":"xml"}})", "response_format"},
  };
  for (const Case& c : cases) {
    const ApiError e = ChatError(c.body);
    EXPECT_EQ(e.status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body << " -> " << e.message;
  }
  // The template's own error names the message.
  EXPECT_NE(ChatError(R"({"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]})").message.find("1"),
            std::string::npos);
}

TEST_F(ServerApiTest, ChatLogprobsAndLimits) {
  const ParsedRequest r = Chat(R"({"messages":[{"role":"user","content":"a"}],"logprobs":true,"top_logprobs":3,)"
                               R"("max_completion_tokens":7})");
  EXPECT_EQ(r.logprobs, 3);
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_EQ(Chat(R"({"messages":[{"role":"user","content":"a"}],"logprobs":true})").logprobs, 0);
  EXPECT_EQ(Chat(R"({"messages":[{"role":"user","content":"a"}]})").logprobs, -1);
  // ignore_eos also lets chat run past <end_of_turn>.
  const ParsedRequest ig = Chat(R"({"messages":[{"role":"user","content":"a"}],"ignore_eos":true})");
  EXPECT_TRUE(ig.stop_ids.empty());
}

TEST_F(ServerApiTest, TokenStrings) {
  EXPECT_EQ(TokenString(nullptr, 42), "token_id:42");
  EXPECT_EQ(TokenString(tok_, tok_->bos_id()), "<bos>");
  const int32_t hello = tok_->Encode(" hello")[0];
  EXPECT_EQ(TokenString(tok_, hello), " hello");
  int byte_id = -1;
  for (int i = 0; i < tok_->vocab_size() && byte_id < 0; ++i)
    if (tok_->IsByte(i) && tok_->ByteValue(i) == 0xE2) byte_id = i;
  ASSERT_GE(byte_id, 0);
  EXPECT_EQ(TokenString(tok_, byte_id), "<0xE2>");
  EXPECT_EQ(TokenBytes(tok_, byte_id), std::vector<int>{0xE2});
}

TEST_F(ServerApiTest, EncodeTextMatchesSpecialTokensLikeHuggingFace) {
  std::vector<int32_t> expect = {2};
  for (int id : tok_->Encode("Hi")) expect.push_back(id);
  expect.push_back(1);
  for (int id : tok_->Encode(" there<start_of_turn>")) expect.push_back(id);
  EXPECT_EQ(EncodeText(*tok_, "<bos>Hi<eos> there<start_of_turn>"), expect);
  EXPECT_EQ(EncodeText(*tok_, "<pad><unk>"), (std::vector<int32_t>{tok_->pad_id(), tok_->unk_id()}));
  const std::vector<int> partial = tok_->Encode("<bo");
  EXPECT_EQ(EncodeText(*tok_, "<bo"), std::vector<int32_t>(partial.begin(), partial.end()));
  EXPECT_TRUE(EncodeText(*tok_, "").empty());
  // A text prompt containing "<eos>" gets the EOS id, as with HF-based servers.
  const ParsedRequest r = Completion(R"({"prompt":"a<eos>"})");
  EXPECT_EQ(r.prompts[0].back(), 1);
}

TEST_F(ServerApiTest, TokenizeAndDetokenize) {
  const json t = Tokenize(json::parse(R"({"prompt":"Hello world"})"), text_, limits_);
  std::vector<int32_t> expect = {2};
  for (int id : tok_->Encode("Hello world")) expect.push_back(id);
  EXPECT_EQ(t["tokens"].get<std::vector<int32_t>>(), expect);
  EXPECT_EQ(t["count"], expect.size());
  const json no_bos = Tokenize(json::parse(R"({"prompt":"Hello world","add_special_tokens":false,"return_token_strs":true})"),
                               text_, limits_);
  EXPECT_EQ(no_bos["tokens"].size(), expect.size() - 1);
  EXPECT_EQ(no_bos["token_strs"][0], "Hello");
  // Messages: the chat prompt, with or without the generation prompt.
  const char* msgs = R"({"messages":[{"role":"user","content":"Hi"}]})";
  EXPECT_EQ(Tokenize(json::parse(msgs), text_, limits_)["tokens"].get<std::vector<int32_t>>(),
            Chat(msgs).prompts[0]);
  const json no_gen = Tokenize(json::parse(R"({"messages":[{"role":"user","content":"Hi"}],"add_generation_prompt":false})"),
                               text_, limits_);
  EXPECT_EQ(no_gen["tokens"].size() + GenerationPromptIds(*tok_).size(), Chat(msgs).prompts[0].size());
  EXPECT_EQ(Detokenize(json::parse(R"({"tokens":[2,4521,1,2134]})"), text_)["prompt"], tok_->Decode({2, 4521, 1, 2134}));
  const json info = TokenizerInfo(text_);
  EXPECT_EQ(info["eos_token"], "<eos>");
  EXPECT_EQ(info["bos_token"], "<bos>");
  EXPECT_NE(info["chat_template"].get<std::string>().find("<start_of_turn>"), std::string::npos);

  auto status = [&](const char* body, bool detok, const ModelInfo& m) {
    try {
      detok ? Detokenize(json::parse(body), m) : Tokenize(json::parse(body), m, limits_);
    } catch (const ApiError& e) {
      return e.status;
    }
    return 0;
  };
  EXPECT_EQ(status(R"({})", false, text_), 400);
  EXPECT_EQ(status(R"({"prompt":"a","messages":[]})", false, text_), 400);
  EXPECT_EQ(status(R"({"prompt":1})", false, text_), 400);
  EXPECT_EQ(status(R"({"prompt":"a","bogus":1})", false, text_), 400);
  EXPECT_EQ(status(R"({"tokens":"a"})", true, text_), 400);
  EXPECT_EQ(status(R"({"tokens":[999999]})", true, text_), 400);
  EXPECT_EQ(status(R"({"prompt":"a"})", false, ids_), 400);
  try {
    TokenizerInfo(ids_);
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 404);
  }
}

TEST_F(ServerApiTest, DumpNeverThrowsOnInvalidUtf8) {
  json j = {{"text", std::string("a\xff" "b")}};
  EXPECT_NO_THROW(Dump(j));
  EXPECT_NE(Dump(j).find("\xEF\xBF\xBD"), std::string::npos);
}

}  // namespace
}  // namespace rg::server
