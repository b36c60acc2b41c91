// strata: the command-line front end. Errors print one line, `strata: error: <message>`, and exit
// with 1 (2 for usage errors).
#include <cstdio>
#include <exception>
#include <string>

#include "runtime/cli/commands.h"
#include "runtime/error.h"

int main(int argc, char** argv) {
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
    strata::cli::add_serve(app);
    strata::cli::add_plan(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        // An unknown word where a command belongs: name it and list the commands, instead of
        // CLI11's "A subcommand is required" or "The following arguments were not expected".
        if (app.get_subcommands().empty() && (argc == 1 || argv[1][0] != '-')) {
            std::string names;
            for (const CLI::App* sub : app.get_subcommands({}))
                names += (names.empty() ? "" : ", ") + sub->get_name();
            if (argc == 1)
                std::fprintf(stderr, "strata: error: a command is required: %s\n", names.c_str());
            else
                std::fprintf(stderr, "strata: error: unknown command '%s'; the commands are: %s\n",
                             argv[1], names.c_str());
            return 2;
        }
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
