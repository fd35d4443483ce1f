#pragma once
// Running work that parses untrusted files in a forked child process.
//
// Debian 12's libhdf5 (1.10.8) trusts sizes and offsets inside the files it reads: our fuzzing
// (fuzz/README.md) made it overflow a heap buffer, request exabytes and loop forever on damaged
// HDF5 files. slidegrade's own files carry a checksum that is verified before HDF5 sees a byte,
// but files from elsewhere (Keras downloads) cannot; so commands that convert such a file run
// the conversion here: a crash, an abort or a hang ends the child, and the caller gets an
// sg::Error instead of dying with it.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace sg {

// Runs work() in a child process (fork, no exec), waits for it and returns what work() returned:
// an exit status, 0, 1 or 2. The child shares nothing with the caller afterwards: results must go
// to files or to stdout / stderr (flushed at the end). Throws sg::Error starting with `what`:
//   the child's own error text (an sg::Error or std::exception thrown by work(), passed back),
//   "... crashed (signal 11, SIGSEGV) ...", "... did not finish within N s (killed) ...",
//   "... ended with exit status N ..." (the child ended before work() returned: a library's exit(),
//   a sanitizer report in an instrumented build).
// Call it from a thread that owns no lock other threads need: only this thread lives on in the
// child.
int run_in_child_process(const std::string& what, const std::function<int()>& work, std::chrono::seconds timeout);

// The time limit for reading a file of `bytes` in a child: a minute, plus a second for every
// 4 MB (a Keras B7 file, 260 MB, reads in well under 30 s here). The environment variable
// SLIDEGRADE_READ_TIME_LIMIT (seconds) replaces it.
std::chrono::seconds child_time_limit_for_file(uint64_t bytes);

}  // namespace sg
