// rgemma: the command line. `rgemma --help` lists the subcommands.
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>

#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/llama_flags.h"
#include "cli/version.h"
#include "core/error.h"

int main(int argc, char** argv) {
  // A write past the file-size limit (ulimit -f) fails with EFBIG and is
  // reported like any other write error, instead of killing the process.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"rgemma: RecurrentGemma (Griffin) inference on the CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] { return rg::cli::VersionText(); });
  rg::cli::RegisterChat(app);
  rg::cli::RegisterForward(app);
  rg::cli::RegisterGenerate(app);
  rg::cli::RegisterInit(app);
  rg::cli::RegisterQuantize(app);
  rg::cli::RegisterBench(app);
  rg::cli::RegisterTokenize(app);
  rg::cli::RegisterServe(app);
  rg::cli::RegisterScore(app);
  rg::cli::RegisterPerplexity(app);
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) known |= sub->get_name() == argv[1];
    if (!known) {
      std::string names;
      for (const CLI::App* sub : app.get_subcommands({})) names += (names.empty() ? "" : ", ") + sub->get_name();
      std::fprintf(stderr, "rgemma: unknown command '%s' (commands: %s)\n", argv[1], names.c_str());
      return 2;
    }
  }
  // llama.cpp's multi-letter flags, mapped or refused before CLI11 misreads them.
  std::vector<std::string> args;
  try {
    args = rg::cli::RewriteLlamaFlags(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const rg::Error& e) {
    std::fprintf(stderr, "rgemma: %s (see rgemma %s --help)\n", e.what(), argc > 1 ? argv[1] : "");
    return 2;
  }
  std::vector<char*> new_argv = {argv[0]};
  for (std::string& a : args) new_argv.push_back(a.data());
  try {
    app.parse(int(new_argv.size()), new_argv.data());
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "rgemma: %s (see rgemma --help)\n", e.what());
    return 2;
  } catch (const rg::cli::ExitCode& e) {
    return e.status;
  } catch (const rg::Error& e) {
    std::fprintf(stderr, "rgemma: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "rgemma: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rgemma: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
