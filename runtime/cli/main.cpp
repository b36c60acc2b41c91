// strata: the command-line front end. Errors print one line, `strata: error: <message>`, and exit
// with 1 (2 for usage errors).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "runtime/cli/commands.h"
#include "runtime/error.h"

namespace {

// libgomp's threads spin up to GOMP_SPINCOUNT iterations (300,000 by default) at every barrier
// before they sleep. When other processes share the cores, that spinning starves the very thread
// the others wait for: 2-thread decode of a 2.5 GiB model fell from ~36 to 0.9 tokens/s beside
// two busy processes on 2 cores, and stayed at ~21 with a bound of 10,000, which costs nothing
// measurable on an idle machine (OMP_WAIT_POLICY=passive: 22 loaded, but 25 idle). libgomp reads
// the variable once, when it is loaded, before main: so Strata sets it and runs itself again. A
// GOMP_SPINCOUNT or OMP_WAIT_POLICY the user set is left alone.
void bound_openmp_spinning(char** argv) {
    if (std::getenv("GOMP_SPINCOUNT") != nullptr || std::getenv("OMP_WAIT_POLICY") != nullptr)
        return;
    setenv("GOMP_SPINCOUNT", "10000", 1);
    execv("/proc/self/exe", argv);  // returns only when it fails: then go on as we are
}

}  // namespace

int main(int argc, char** argv) {
    bound_openmp_spinning(argv);
    CLI::App app{"Strata: Mixture-of-Experts inference on one workstation (GGUF models)", "strata"};
    app.set_version_flag("--version", std::string("strata ") + STRATA_VERSION);
    app.require_subcommand(1);
    app.fallthrough(false);
    strata::cli::add_inspect(app);
    strata::cli::add_synth(app);
    strata::cli::add_eval(app);
    strata::cli::add_run(app);
    strata::cli::add_bench(app);
    strata::cli::add_tokenize(app);
    strata::cli::add_info(app);
    strata::cli::add_tune(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "strata: error: %s\n", e.what());
        std::fprintf(stderr, "Run with --help for more information.\n");
        return 2;
    } catch (const strata::UsageError& e) {
        std::fprintf(stderr, "strata: error: %s\n", e.what());
        return 2;
    } catch (const strata::Error& e) {
        std::fprintf(stderr, "strata: error: %s\n", e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "strata: error: out of memory\n");
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "strata: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
