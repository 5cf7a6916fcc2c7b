// PyRandom against CPython's random module (tests/data/py_random_golden.txt,
// made by make_py_random_golden.py): the same seeds give the same draws.
#include <fstream>
#include <map>
#include <sstream>

#include "engine/py_random.h"
#include "tests/support/test_util.h"

using namespace ofa;

namespace {

struct GoldenSeed {
  uint64_t seed = 0;
  std::map<std::string, std::vector<std::string>> lines;
};

std::vector<GoldenSeed> load() {
  std::ifstream f(std::string(OFA_TEST_DATA_DIR) + "/py_random_golden.txt");
  EXPECT_TRUE(f.good()) << "py_random_golden.txt missing";
  std::vector<GoldenSeed> out;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream is(line);
    std::string key, v;
    is >> key;
    if (key == "seed") {
      out.emplace_back();
      is >> out.back().seed;
      continue;
    }
    while (is >> v) out.back().lines[key].push_back(v);
  }
  return out;
}

TEST(PyRandom, MatchesCPythonForEverySeedAndDraw) {
  std::vector<GoldenSeed> golden = load();
  ASSERT_EQ(golden.size(), 10u);
  for (const GoldenSeed& g : golden) {
    SCOPED_TRACE("seed " + std::to_string(g.seed));
    PyRandom r(g.seed);
    for (const std::string& v : g.lines.at("u32")) EXPECT_EQ(std::to_string(r.genrand_uint32()), v);
    for (const std::string& v : g.lines.at("random")) EXPECT_EQ(r.random(), std::stod(v));
    const int bits[] = {1, 7, 33, 64};
    for (int i = 0; i < 4; ++i) EXPECT_EQ(std::to_string(r.getrandbits(bits[i])), g.lines.at("bits")[i]);
    const int64_t ns[] = {1, 3, 5, 100, (int64_t(1) << 40) + 3};
    for (int i = 0; i < 5; ++i) EXPECT_EQ(std::to_string(r.randrange(0, ns[i])), g.lines.at("below")[i]);
    const std::vector<int> ks = {3, 5, 7};
    for (const std::string& v : g.lines.at("choice")) EXPECT_EQ(std::to_string(r.choice(ks)), v);
    for (const std::string& v : g.lines.at("randint")) EXPECT_EQ(std::to_string(r.randint(128, 224)), v);
    std::vector<int> sh(10);
    for (int i = 0; i < 10; ++i) sh[i] = i;
    r.shuffle(sh);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(std::to_string(sh[i]), g.lines.at("shuffle")[i]);
  }
}

TEST(PyRandom, StateSavesAndRestores) {
  PyRandom r(7001000);
  for (int i = 0; i < 700; ++i) r.genrand_uint32();  // past one twist
  PyRandom::State s = r.state();
  std::vector<uint32_t> a;
  for (int i = 0; i < 1000; ++i) a.push_back(r.genrand_uint32());
  r.set_state(s);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(r.genrand_uint32(), a[i]) << i;
}

TEST(PyRandom, BadArgumentsAreRefused) {
  PyRandom r(1);
  EXPECT_THROW(r.randrange(5, 5), Error);
  EXPECT_THROW(r.getrandbits(0), Error);
  EXPECT_THROW(r.choice(std::vector<int>{}), Error);
}

}  // namespace
