// DistributedSampler and the sub-train subset against torch 1.13
// (tests/data/sampler_golden.txt, made by make_sampler_golden.py), sharding
// coverage, and LoaderPosition's text form.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "data/sampler.h"
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::data;
using namespace ofa::test;

namespace {

struct GoldenLine {
  std::string kind;
  std::vector<int64_t> head;  // numbers before ':'
  std::vector<int64_t> idx;   // after it
};

std::vector<GoldenLine> golden() {
  std::ifstream f(std::string(OFA_TEST_DATA_DIR) + "/sampler_golden.txt");
  EXPECT_TRUE(f.good()) << "missing tests/data/sampler_golden.txt";
  std::vector<GoldenLine> v;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream is(line);
    GoldenLine g;
    is >> g.kind;
    if (g.kind == "torch") continue;
    std::string tok;
    bool after = false;
    while (is >> tok) {
      if (tok == ":") {
        after = true;
        continue;
      }
      (after ? g.idx : g.head).push_back(std::stoll(tok));
    }
    v.push_back(g);
  }
  return v;
}

}  // namespace

TEST(Sampler, DistributedOrderEqualsTorch) {
  int checked = 0;
  for (const GoldenLine& g : golden()) {
    if (g.kind != "dist") continue;
    ASSERT_EQ(g.head.size(), 6u);
    SamplerOptions o;
    o.world_size = g.head[1];
    o.rank = g.head[2];
    o.seed = static_cast<uint64_t>(g.head[4]);
    o.drop_last = g.head[5] != 0;
    DistributedSampler s(g.head[0], o);
    EXPECT_EQ(s.epoch_indices(g.head[3]), g.idx)
        << "n " << g.head[0] << " world " << o.world_size << " rank " << o.rank << " epoch " << g.head[3];
    EXPECT_EQ(s.num_samples(), static_cast<int64_t>(g.idx.size()));
    ++checked;
  }
  EXPECT_EQ(checked, 37);
}

TEST(Sampler, SubTrainSubsetAndMyDistributedSamplerEqualTorch) {
  std::vector<int64_t> sub;
  int64_t sub_n = 0, sub_k = 0;
  int subs = 0, dists = 0;
  for (const GoldenLine& g : golden()) {
    if (g.kind == "sub") {
      sub = sub_train_indexes(g.head[0], g.head[1], static_cast<uint64_t>(g.head[2]));
      sub_n = g.head[0];
      sub_k = g.head[1];
      EXPECT_EQ(sub, g.idx) << "n " << g.head[0] << " k " << g.head[1];
      EXPECT_EQ(sub, sub_train_indexes(g.head[0], g.head[1])) << "default seed is DataProvider.SUB_SEED";
      ++subs;
    } else if (g.kind == "mydist") {
      SamplerOptions o;
      o.world_size = g.head[0];
      o.rank = g.head[1];
      DistributedSampler s(sub, o);
      EXPECT_EQ(s.epoch_indices(g.head[2]), g.idx) << "world " << o.world_size << " rank " << o.rank;
      if (g.head[2] == 0) {
        // The loader build_sub_train_loader builds: the sampler's epoch stays 0.
        DistributedSampler st = sub_train_sampler(sub_n, static_cast<int64_t>(sub_k), o.world_size, o.rank);
        EXPECT_EQ(st.epoch_indices(0), g.idx) << "world " << o.world_size << " rank " << o.rank;
      }
      ++dists;
    }
  }
  EXPECT_EQ(subs, 3);
  EXPECT_GE(dists, 20);
}

// Every index appears once per epoch over all ranks; the padding repeats
// exactly the first (total - n) entries of the permutation.
TEST(Sampler, ShardingCoversEveryIndexOnce) {
  for (int64_t n : {1, 5, 12, 13, 100}) {
    for (int64_t w : {1, 2, 3, 4, 8}) {
      for (int64_t e : {0, 1, 7}) {
        std::map<int64_t, int> count;
        int64_t total = 0;
        for (int64_t r = 0; r < w; ++r) {
          SamplerOptions o;
          o.world_size = w;
          o.rank = r;
          DistributedSampler s(n, o);
          std::vector<int64_t> idx = s.epoch_indices(e);
          EXPECT_EQ(static_cast<int64_t>(idx.size()), (n + w - 1) / w);
          for (int64_t i : idx) {
            ASSERT_TRUE(i >= 0 && i < n);
            ++count[i];
          }
          total += static_cast<int64_t>(idx.size());
        }
        const int64_t padded = total - n;
        EXPECT_EQ(total % w, 0);
        EXPECT_LT(padded, w);
        EXPECT_EQ(static_cast<int64_t>(count.size()), n) << "n " << n << " w " << w;
        int64_t twice = 0;
        for (auto& kv : count) {
          EXPECT_GE(kv.second, 1);
          twice += kv.second - 1;
        }
        EXPECT_EQ(twice, padded) << "n " << n << " w " << w << " e " << e;
        // The duplicates are the first entries of the epoch's permutation.
        SamplerOptions one;
        std::vector<int64_t> perm = DistributedSampler(n, one).epoch_indices(e);
        std::map<int64_t, int> expect_dup;
        for (int64_t k = 0; k < padded; ++k) ++expect_dup[perm[static_cast<size_t>(k % n)]];
        for (auto& kv : expect_dup) EXPECT_EQ(count[kv.first], 1 + kv.second);
      }
    }
  }
}

TEST(Sampler, DropLastNeverRepeats) {
  for (int64_t n : {3, 10, 11}) {
    const int64_t w = 4;
    std::map<int64_t, int> count;
    for (int64_t r = 0; r < w; ++r) {
      SamplerOptions o;
      o.world_size = w;
      o.rank = r;
      o.drop_last = true;
      for (int64_t i : DistributedSampler(n, o).epoch_indices(2)) ++count[i];
    }
    for (auto& kv : count) EXPECT_EQ(kv.second, 1);
    EXPECT_EQ(static_cast<int64_t>(count.size()), n / w * w);
  }
}

TEST(Sampler, EpochsDifferAndRepeat) {
  DistributedSampler s(50);
  EXPECT_NE(s.epoch_indices(0), s.epoch_indices(1));
  EXPECT_EQ(s.epoch_indices(4), s.epoch_indices(4));
  SamplerOptions o;
  o.shuffle = false;
  std::vector<int64_t> seq = DistributedSampler(5, o).epoch_indices(3);
  EXPECT_EQ(seq, (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

TEST(Sampler, SubsetOnlySamplesItsIndexes) {
  std::vector<int64_t> sub = {40, 7, 19, 3, 88};
  SamplerOptions o;
  o.world_size = 2;
  for (int64_t r = 0; r < 2; ++r) {
    o.rank = r;
    for (int64_t i : DistributedSampler(sub, o).epoch_indices(1))
      EXPECT_NE(std::find(sub.begin(), sub.end(), i), sub.end()) << i;
  }
}

TEST(Sampler, BadArgumentsAreNamed) {
  SamplerOptions o;
  o.world_size = 2;
  o.rank = 2;
  std::string e = error_of([&] { DistributedSampler s(10, o); });
  EXPECT_TRUE(has(e, "rank 2")) << e;
  o.world_size = 0;
  o.rank = 0;
  e = error_of([&] { DistributedSampler s(10, o); });
  EXPECT_TRUE(has(e, "world_size")) << e;
  e = error_of([&] { DistributedSampler(std::vector<int64_t>{1, -3}); });
  EXPECT_TRUE(has(e, "-3")) << e;
  e = error_of([&] { DistributedSampler(0).epoch_indices(-1); });
  EXPECT_TRUE(has(e, "epoch")) << e;
}

TEST(Sampler, SubTrainLargerThanTrainGivesAll) {
  std::vector<int64_t> v = sub_train_indexes(20, 100);
  EXPECT_EQ(v.size(), 20u);
  std::sort(v.begin(), v.end());
  for (int64_t i = 0; i < 20; ++i) EXPECT_EQ(v[static_cast<size_t>(i)], i);
}

TEST(Sampler, LoaderPositionRoundTrips) {
  LoaderPosition p;
  p.epoch = 3;
  p.batches_consumed = 17;
  p.batches_per_epoch = 40;
  p.dataset_size = 1000;
  p.batch_size = 25;
  p.seed = 12345678901234ULL;
  p.world_size = 8;
  p.rank = 5;
  p.sampler_seed = 2;
  EXPECT_EQ(p.to_string(), "epoch=3 batch=17 of=40 n=1000 bs=25 seed=12345678901234 world=8 rank=5 sseed=2");
  EXPECT_EQ(LoaderPosition::parse(p.to_string()), p);
  LoaderPosition q = p;
  q.rank = 4;
  EXPECT_FALSE(LoaderPosition::parse(q.to_string()) == p);
  std::string e = error_of([] { LoaderPosition::parse("epoch=3 batch=x of=1 n=1 bs=1 seed=0 world=1 rank=0 sseed=0"); });
  EXPECT_TRUE(has(e, "batch=x") || has(e, "'x'")) << e;
  e = error_of([] { LoaderPosition::parse("epoch=3"); });
  EXPECT_TRUE(has(e, "9 fields")) << e;
  e = error_of([] { LoaderPosition::parse("epoch=1 batch=2 of=3 n=4 bs=5 sed=0 world=1 rank=0 sseed=0"); });
  EXPECT_TRUE(has(e, "sed")) << e;
}
