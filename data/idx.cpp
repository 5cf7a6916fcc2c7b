#include "data/idx.h"

#include <zlib.h>

#include <cstdlib>

#include "engine/common.h"

namespace ofa::data {

namespace {
std::vector<uint8_t> read_all(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files too
  OFA_CHECK(f != nullptr, path, ": cannot open (does it exist? Fashion-MNIST comes with the Debian package dataset-fashion-mnist)");
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  for (;;) {
    int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int errnum = 0;
      std::string msg = gzerror(f, &errnum);
      gzclose(f);
      throw Error(path + ": read error: " + msg);
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
    OFA_CHECK(out.size() < (size_t(1) << 33), path, ": larger than 8 GiB uncompressed; not an IDX file we accept");
  }
  gzclose(f);
  return out;
}
}  // namespace

IdxArray read_idx(const std::string& path) {
  std::vector<uint8_t> b = read_all(path);
  OFA_CHECK(b.size() >= 4, path, ": ", b.size(), " bytes, too short for an IDX header");
  OFA_CHECK(b[0] == 0 && b[1] == 0, path, ": not an IDX file (magic must start with two zero bytes)");
  OFA_CHECK(b[2] == 0x08, path, ": IDX element type 0x", std::hex, int(b[2]), " not supported (only unsigned bytes, 0x08)");
  const int nd = b[3];
  OFA_CHECK(nd >= 1 && nd <= 4, path, ": IDX rank ", nd, " not supported (1 to 4)");
  OFA_CHECK(b.size() >= size_t(4 + 4 * nd), path, ": truncated IDX header");
  IdxArray a;
  uint64_t n = 1;
  for (int d = 0; d < nd; ++d) {
    const uint8_t* p = &b[4 + 4 * d];
    uint64_t s = (uint64_t(p[0]) << 24) | (uint64_t(p[1]) << 16) | (uint64_t(p[2]) << 8) | p[3];
    a.shape.push_back(static_cast<int64_t>(s));
    n *= s;
    OFA_CHECK(n < (uint64_t(1) << 33), path, ": declared sizes too large");
  }
  const size_t header = 4 + 4 * nd;
  OFA_CHECK(b.size() == header + n, path, ": header declares ", n, " bytes of data, file holds ", b.size() - header,
            (b.size() < header + n ? " (truncated)" : " (trailing bytes)"));
  a.data.assign(b.begin() + header, b.end());
  return a;
}

std::string fashion_mnist_dir() {
  const char* env = std::getenv("OFA_FASHION_MNIST_DIR");
  return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

}  // namespace ofa::data
