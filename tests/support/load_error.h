// Test helper: the one-line error Weights::Load(dir) throws, or "" (and a
// test failure) when the load succeeds.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "model/weights.h"

namespace rg {

inline std::string LoadError(const std::string& dir) {
  try {
    Weights::Load(dir);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "error must be one line: " << msg;
    return msg;
  }
  ADD_FAILURE() << "expected the load of " << dir << " to fail";
  return "";
}

}  // namespace rg
