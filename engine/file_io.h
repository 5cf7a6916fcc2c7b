// Files that are never seen half-written: the one atomic writer of the
// engine (checkpoints, run-folder files, reports), and folder helpers.
#pragma once
#include <cstddef>
#include <functional>
#include <string>

namespace ofa {

// Receives the file's bytes in order, as many pieces as the writer likes.
using ByteSink = std::function<void(const char* data, size_t size)>;

// Writes PATH atomically: `emit` fills PATH.tmp.<pid>.<n>, which is fsynced
// and renamed over PATH, then the folder is fsynced; PATH is always either
// the old file or the complete new one, and the temporary is removed on
// failure. Errors throw ofa::Error starting with `who` and naming the file.
void write_file_atomic(const std::string& path, const std::function<void(const ByteSink&)>& emit,
                       const std::string& who);
void write_file_atomic(const std::string& path, const std::string& bytes, const std::string& who);

bool path_exists(const std::string& path);
// mkdir -p; throws naming the first folder that cannot be made.
void make_directories(const std::string& path);
// The folder part of a path ("." for a bare name).
std::string parent_dir(const std::string& path);

}  // namespace ofa
