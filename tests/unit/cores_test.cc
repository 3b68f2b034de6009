// --cores parsing and validation.
#include <gtest/gtest.h>

#include "runtime/cores.hh"
#include "runtime/engine.hh"

using namespace ioe;

namespace {
std::vector<unsigned> parse_ok(const char* s) {
    core_set_error err;
    auto v = parse_cores(s, err);
    EXPECT_EQ(err.message, "") << s;
    return v;
}
std::string parse_err(const char* s) {
    core_set_error err;
    auto v = parse_cores(s, err);
    EXPECT_TRUE(v.empty()) << s;
    return err.message;
}
}  // namespace

TEST(cores, list_range_and_mask_agree) {
    auto allowed = allowed_cores();
    ASSERT_FALSE(allowed.empty());
    if (allowed.size() < 2 || allowed[0] != 0 || allowed[1] != 1) GTEST_SKIP() << "needs cores 0 and 1";
    EXPECT_EQ(parse_ok("0,1"), (std::vector<unsigned>{0, 1}));
    EXPECT_EQ(parse_ok("0-1"), (std::vector<unsigned>{0, 1}));
    EXPECT_EQ(parse_ok("0x3"), (std::vector<unsigned>{0, 1}));
    EXPECT_EQ(parse_ok("1,0"), (std::vector<unsigned>{0, 1}));
    EXPECT_EQ(parse_ok("0"), (std::vector<unsigned>{0}));
}

TEST(cores, bad_values_are_rejected_with_a_message) {
    EXPECT_NE(parse_err("4096").find("core 4096"), std::string::npos);
    EXPECT_NE(parse_err("999").find("does not exist"), std::string::npos);
    EXPECT_NE(parse_err("").find("empty"), std::string::npos);
    EXPECT_NE(parse_err("a").find("'a' is not a core number"), std::string::npos);
    EXPECT_NE(parse_err("0,,1").find("empty item"), std::string::npos);
    EXPECT_NE(parse_err("1-0").find("runs backwards"), std::string::npos);
    EXPECT_NE(parse_err("0x0").find("selects no core"), std::string::npos);
    EXPECT_NE(parse_err("0xZZ").find("not a hexadecimal mask"), std::string::npos);
    EXPECT_NE(parse_err("0,0").find("listed twice"), std::string::npos);
    EXPECT_NE(parse_err("0-").find("not a range"), std::string::npos);
    // The message names the option and the value given.
    EXPECT_EQ(parse_err("999").rfind("--cores '999': ", 0), 0u);
}

TEST(cores, engine_refuses_a_core_that_does_not_exist) {
    engine_config cfg;
    cfg.cores = {999};
    cfg.memory.size_mb = 2;
    try {
        engine e(cfg);
        FAIL() << "engine accepted core 999";
    } catch (const std::invalid_argument& ex) {
        EXPECT_NE(std::string(ex.what()).find("core 999 does not exist"), std::string::npos) << ex.what();
    }
}

TEST(cores, format_is_compact) {
    EXPECT_EQ(format_cores({0, 1, 2, 5, 7, 8}), "0-2,5,7-8");
    EXPECT_EQ(format_cores({3}), "3");
}
