// rgemma: the command line. `rgemma --help` lists the subcommands.
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"

int main(int argc, char** argv) {
  // A write past the file-size limit (ulimit -f) fails with EFBIG and is
  // reported like any other write error, instead of killing the process.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"rgemma: RecurrentGemma (Griffin) inference on the CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "rgemma 0.1.0");
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
  try {
    app.parse(argc, argv);
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
