#pragma once
// The subcommands of the `ringpipe` executable. Each takes the arguments after
// its name and returns the process exit code (see components.hpp: kExit*).
// Called once from main(), on the main thread.

#include "cli.hpp"

namespace ringpipe::apps {

[[nodiscard]] int ring_command(Args args);       // ring create|inspect|tail|rm-reader
[[nodiscard]] int validate_command(Args args);   // validate FILE
[[nodiscard]] int stat_command(Args args);       // stat [FILE] [--once]
[[nodiscard]] int tail_command(Args args);       // tail RING [FILE]
[[nodiscard]] int component_command(Args args);  // component NAME [--config FILE]
[[nodiscard]] int run_command(Args args);        // run [FILE] (also: no subcommand)

}  // namespace ringpipe::apps
