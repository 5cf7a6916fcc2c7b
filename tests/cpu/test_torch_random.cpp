// torch.Generator + torch.randperm on the CPU, bit for bit against PyTorch
// 1.13 (tests/data/randperm_golden.txt, made by make_randperm_golden.py).
#include <algorithm>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include "data/torch_random.h"
#include "tests/support/test_util.h"

using namespace ofa;
using data::randperm;
using data::TorchGenerator;

namespace {

struct GoldenCase {
  int64_t n = 0;
  uint64_t seed = 0;
  std::vector<int64_t> calls;
  std::vector<int64_t> head, tail;
  int64_t checksum = 0;
};

std::vector<int64_t> read_counted(std::istringstream& ss) {
  int64_t k = 0;
  ss >> k;
  std::vector<int64_t> v(static_cast<size_t>(k));
  for (auto& x : v) ss >> x;
  return v;
}

std::vector<GoldenCase> load_golden() {
  std::ifstream f(std::string(OFA_TEST_DATA_DIR) + "/randperm_golden.txt");
  EXPECT_TRUE(f.good()) << "missing tests/data/randperm_golden.txt";
  std::vector<GoldenCase> out;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    std::string tag;
    ss >> tag;
    if (tag == "case") {
      GoldenCase c;
      ss >> c.n >> c.seed;
      int64_t m;
      while (ss >> m) c.calls.push_back(m);
      out.push_back(c);
    } else if (tag == "head") {
      out.back().head = read_counted(ss);
    } else if (tag == "tail") {
      out.back().tail = read_counted(ss);
    } else if (tag == "checksum") {
      ss >> out.back().checksum;
    }
  }
  return out;
}

TEST(TorchRandom, RandpermMatchesTorchGolden) {
  std::vector<GoldenCase> cases = load_golden();
  ASSERT_GE(cases.size(), 10u);
  for (const auto& c : cases) {
    TorchGenerator g(c.seed);
    std::vector<int64_t> r;
    for (int64_t m : c.calls) r = randperm(m, g);
    ASSERT_EQ(static_cast<int64_t>(r.size()), c.n);
    std::vector<int64_t> head(r.begin(), r.begin() + static_cast<int64_t>(c.head.size()));
    std::vector<int64_t> tail(r.end() - static_cast<int64_t>(c.tail.size()), r.end());
    EXPECT_EQ(head, c.head) << "n=" << c.n << " seed=" << c.seed;
    EXPECT_EQ(tail, c.tail) << "n=" << c.n << " seed=" << c.seed;
    int64_t sum = 0;
    for (size_t i = 0; i < r.size(); ++i) sum += static_cast<int64_t>(i + 1) * r[i];
    EXPECT_EQ(sum, c.checksum) << "n=" << c.n << " seed=" << c.seed;
  }
}

// torch.randint(0, 2**bits, (8,), generator) from the golden file: bits 31
// draws random() % 2^31, bits 62 draws random64() % 2^62.
TEST(TorchRandom, RawDrawsMatchTorchRandint) {
  std::ifstream f(std::string(OFA_TEST_DATA_DIR) + "/randperm_golden.txt");
  std::string line;
  int checked = 0;
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    std::string tag;
    uint64_t seed = 0;
    ss >> tag >> seed;
    if (tag != "randint31" && tag != "randint62") continue;
    TorchGenerator g(seed);
    uint64_t v = 0;
    for (int i = 0; ss >> v; ++i) {
      uint64_t got = tag == "randint31" ? g.random() % (uint64_t{1} << 31) : g.random64() % (uint64_t{1} << 62);
      EXPECT_EQ(got, v) << tag << " seed " << seed << " draw " << i;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 32);
}

TEST(TorchRandom, RandpermIsAPermutation) {
  TorchGenerator g(2147483647);
  std::vector<int64_t> r = randperm(60000, g);
  std::vector<int64_t> sorted = r;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(60000);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
}

TEST(TorchRandom, ZeroAndOneDrawNothing) {
  TorchGenerator a(5), b(5);
  EXPECT_TRUE(randperm(0, a).empty());
  EXPECT_EQ(randperm(1, a), std::vector<int64_t>{0});
  EXPECT_EQ(a.state(), b.state());  // n - 1 draws: none for n <= 1
  randperm(3, a);                   // two draws
  b.random();
  b.random();
  EXPECT_EQ(a.state(), b.state());
}

TEST(TorchRandom, MatchesStdMt19937AndKeepsLow32BitsOfSeed) {
  // at::mt19937 is the standard MT19937 (init_genrand) on the low 32 bits of the seed.
  std::mt19937 ref(123456789u);
  TorchGenerator g(123456789u), hi((uint64_t{7} << 32) | 123456789u);
  for (int i = 0; i < 2000; ++i) {
    uint32_t v = g.random();
    EXPECT_EQ(v, ref()) << "draw " << i;
    EXPECT_EQ(hi.random(), v) << "draw " << i;
  }
}

TEST(TorchRandom, StateRoundTrips) {
  TorchGenerator g(42);
  for (int i = 0; i < 700; ++i) g.random();  // past one regeneration of the 624-word state
  TorchGenerator::State s = g.state();
  std::vector<uint32_t> first;
  for (int i = 0; i < 10; ++i) first.push_back(g.random());
  TorchGenerator h(0);
  h.set_state(s);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(h.random(), first[static_cast<size_t>(i)]);
  TorchGenerator::State bad = s;
  bad.index = 625;
  EXPECT_TRUE(test::has(test::error_of([&] { h.set_state(bad); }), "625"));
}

TEST(TorchRandom, ManualSeedResets) {
  TorchGenerator g(2147483647);
  std::vector<int64_t> a = randperm(50, g);
  g.manual_seed(2147483647);
  EXPECT_EQ(randperm(50, g), a);
  EXPECT_NE(randperm(50, g), a);  // the generator moved on
}

TEST(TorchRandom, NegativeNIsRefused) {
  TorchGenerator g(1);
  EXPECT_TRUE(test::has(test::error_of([&] { randperm(-1, g); }), "non-negative"));
}

}  // namespace
