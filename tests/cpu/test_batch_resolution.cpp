// The reference's per-batch training resolution (MyRandomResizedCrop.sample_image_size)
// against Python (tests/data/batch_resolution_golden.txt, make_batch_resolution_golden.py).
#include <fstream>
#include <sstream>

#include "data/transforms.h"
#include "tests/support/test_util.h"

using namespace ofa;

namespace {

std::vector<int64_t> split_ints(const std::string& s, char sep) {
  std::vector<int64_t> v;
  std::stringstream ss(s);
  std::string t;
  while (std::getline(ss, t, sep)) v.push_back(std::stoll(t));
  return v;
}

TEST(BatchResolution, MatchesPythonForEveryCase) {
  std::ifstream f(std::string(OFA_TEST_DATA_DIR) + "/batch_resolution_golden.txt");
  ASSERT_TRUE(f.good()) << "batch_resolution_golden.txt missing";
  std::vector<int64_t> batches;
  std::string line;
  int cases = 0;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream is(line);
    std::string key;
    is >> key;
    if (key == "batches") {
      int64_t b;
      while (is >> b) batches.push_back(b);
      continue;
    }
    ASSERT_EQ(key, "res");
    int cont;
    std::string sizes;
    int64_t epoch;
    is >> cont >> sizes >> epoch;
    std::vector<int64_t> image_size = split_ints(sizes, ',');
    for (int64_t b : batches) {
      int64_t want;
      ASSERT_TRUE(static_cast<bool>(is >> want));
      EXPECT_EQ(data::batch_resolution(b, epoch, image_size, cont != 0), want)
          << "batch " << b << " epoch " << epoch << " sizes " << sizes << " continuous " << cont;
    }
    ++cases;
  }
  EXPECT_EQ(cases, 10);
  EXPECT_EQ(batches.size(), 65u);
}

TEST(BatchResolution, CandidatesStepByFourWhenContinuous) {
  EXPECT_EQ(data::candidate_image_sizes({224, 128, 160}, true), (std::vector<int64_t>{
      128, 132, 136, 140, 144, 148, 152, 156, 160, 164, 168, 172, 176, 180, 184, 188, 192, 196, 200, 204, 208, 212,
      216, 220, 224}));
  EXPECT_EQ(data::candidate_image_sizes({130, 141}, true), (std::vector<int64_t>{132, 136, 140}));
  EXPECT_EQ(data::candidate_image_sizes({224, 128, 160}, false), (std::vector<int64_t>{128, 160, 224}));
}

TEST(BatchResolution, SingleSizeAlwaysWins) {
  for (int64_t b = 0; b < 20; ++b) {
    EXPECT_EQ(data::batch_resolution(b, 7, {224}, false), 224);
    EXPECT_EQ(data::batch_resolution(b, 7, {224}, true), 224);
  }
}

TEST(BatchResolution, SameBatchAndEpochGiveTheSameSize) {
  // Every rank seeds from (batch, epoch) alone, so all agree.
  for (int64_t b = 0; b < 30; ++b)
    EXPECT_EQ(data::batch_resolution(b, 3, {128, 224}, true), data::batch_resolution(b, 3, {128, 224}, true));
}

TEST(BatchResolution, BadArgumentsAreNamed) {
  EXPECT_TRUE(test::has(test::error_of([] { data::batch_resolution(0, 0, {}, true); }), "image_size is empty"));
  EXPECT_TRUE(test::has(test::error_of([] { data::batch_resolution(0, 0, {129, 131}, true); }),
                        "no multiple of 4 between 129 and 131"));
  EXPECT_TRUE(test::has(test::error_of([] { data::batch_resolution(-1, 0, {224}, true); }), "non-negative"));
}

}  // namespace
