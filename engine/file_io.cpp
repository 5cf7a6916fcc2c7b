#include "engine/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "engine/common.h"

namespace ofa {

namespace {

std::string sys_error(const char* what, const std::string& path) {
  return str_cat(what, " '", path, "': ", std::strerror(errno));
}

// The temporary file: closed and removed unless committed.
struct TempFile {
  std::string path;
  int fd = -1;
  bool committed = false;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!committed && !path.empty()) ::unlink(path.c_str());
  }
};

}  // namespace

std::string parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool path_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

void make_directories(const std::string& path) {
  std::string cur = !path.empty() && path[0] == '/' ? "/" : "";
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part;
    if (::mkdir(cur.c_str(), 0777) != 0 && errno != EEXIST)
      throw Error(str_cat("cannot create the folder '", cur, "': ", std::strerror(errno)));
    cur += "/";
  }
}

void write_file_atomic(const std::string& path, const std::function<void(const ByteSink&)>& emit,
                       const std::string& who) {
  static std::atomic<uint64_t> counter{0};
  TempFile tmp;
  tmp.path = str_cat(path, ".tmp.", ::getpid(), ".", counter++);
  tmp.fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (tmp.fd < 0) {
    const std::string msg = sys_error("cannot create", tmp.path);
    tmp.path.clear();  // nothing was created
    throw Error(who + ": " + msg);
  }
  emit([&](const char* p, size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(tmp.fd, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        throw Error(who + ": " + sys_error("cannot write", tmp.path));
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
  });
  if (::fsync(tmp.fd) != 0) throw Error(who + ": " + sys_error("cannot fsync", tmp.path));
  const int fd = tmp.fd;
  tmp.fd = -1;
  if (::close(fd) != 0) throw Error(who + ": " + sys_error("cannot close", tmp.path));
  if (::rename(tmp.path.c_str(), path.c_str()) != 0)
    throw Error(who + ": " + sys_error(("cannot rename to '" + path + "' from").c_str(), tmp.path));
  tmp.committed = true;
  // The rename is durable only once the directory is on disk.
  const std::string dir = parent_dir(path);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) throw Error(who + ": " + sys_error("cannot open directory", dir));
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  errno = err;
  if (rc != 0) throw Error(who + ": " + sys_error("cannot fsync directory", dir));
}

void write_file_atomic(const std::string& path, const std::string& bytes, const std::string& who) {
  write_file_atomic(path, [&](const ByteSink& sink) { sink(bytes.data(), bytes.size()); }, who);
}

}  // namespace ofa
