// The IDX reader: plain and gzip files, and every malformed input refused
// with an error that names the file.
#include <zlib.h>

#include <cstdio>
#include <fstream>

#include "data/idx.h"
#include "tests/support/test_util.h"

using namespace ofa;

namespace {

std::string tmp_path(const std::string& name) { return ::testing::TempDir() + "ofa_idx_" + name; }

void write_plain(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

std::vector<uint8_t> images_2x3x2() {
  std::vector<uint8_t> b = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 2};
  for (uint8_t i = 0; i < 12; ++i) b.push_back(i * 10);
  return b;
}

void expect_error_mentions(const std::string& path, const std::string& what) {
  try {
    data::read_idx(path);
    FAIL() << "no error for " << path;
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find(what), std::string::npos) << m;
  }
}

TEST(Idx, ReadsPlainAndGzip) {
  for (bool gz : {false, true}) {
    std::string p = tmp_path(gz ? "ok.gz" : "ok");
    gz ? write_gz(p, images_2x3x2()) : write_plain(p, images_2x3x2());
    data::IdxArray a = data::read_idx(p);
    EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3, 2}));
    ASSERT_EQ(a.data.size(), 12u);
    EXPECT_EQ(a.data[11], 110);
  }
}

TEST(Idx, MalformedFilesAreRefusedWithTheirName) {
  std::vector<uint8_t> good = images_2x3x2();
  std::vector<uint8_t> truncated(good.begin(), good.end() - 1);
  write_plain(tmp_path("trunc"), truncated);
  expect_error_mentions(tmp_path("trunc"), "truncated");
  std::vector<uint8_t> trailing = good;
  trailing.push_back(1);
  write_plain(tmp_path("trail"), trailing);
  expect_error_mentions(tmp_path("trail"), "trailing");
  std::vector<uint8_t> magic = good;
  magic[0] = 1;
  write_plain(tmp_path("magic"), magic);
  expect_error_mentions(tmp_path("magic"), "magic");
  std::vector<uint8_t> type = good;
  type[2] = 0x0D;
  write_plain(tmp_path("type"), type);
  expect_error_mentions(tmp_path("type"), "element type");
  write_plain(tmp_path("empty"), {});
  expect_error_mentions(tmp_path("empty"), "too short");
  std::vector<uint8_t> huge = {0, 0, 8, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  write_plain(tmp_path("huge"), huge);
  expect_error_mentions(tmp_path("huge"), "too large");
  expect_error_mentions(tmp_path("does_not_exist"), "cannot open");
}

}  // namespace
