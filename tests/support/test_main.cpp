// main() of the test executables that link the engine (GoogleTest's own, plus
// the listener that resets the default generator before every test).
#include <gtest/gtest.h>

#include "tests/support/test_util.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new ofa::test::ResetDefaultGenerator);
  return RUN_ALL_TESTS();
}
