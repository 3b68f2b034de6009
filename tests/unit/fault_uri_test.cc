// fault:// device URIs (storage/fault_uri.hh): the rule they describe, the
// defaults, and errors that name the bad part.
#include <gtest/gtest.h>

#include "storage/fault_uri.hh"

using namespace ioe;

namespace {

std::optional<fault_uri_spec> parse(const std::string& text, std::string& err) {
    auto uri = parse_device_uri(text, err);
    if (!uri) return std::nullopt;
    return parse_fault_uri(*uri, err);
}

}  // namespace

TEST(fault_uri, a_held_write) {
    std::string err;
    auto s = parse("fault:///rC.hold?inner=rC&ops=write&delay_ms=9000&lba_begin=1000&lba_end=1001&skip=1&count=1", err);
    ASSERT_TRUE(s) << err;
    EXPECT_EQ(s->inner, "rC");
    EXPECT_EQ(s->rule.action, fault_action::delay);
    EXPECT_EQ(s->rule.ops, op_mask::write);
    EXPECT_EQ(s->rule.delay, std::chrono::microseconds(9'000'000));
    EXPECT_EQ(s->rule.lba_begin, 1000u);
    EXPECT_EQ(s->rule.lba_end, 1001u);
    EXPECT_EQ(s->rule.skip, 1u);
    EXPECT_EQ(s->rule.count, 1u);
}

TEST(fault_uri, defaults_and_op_lists) {
    std::string err;
    auto s = parse("fault:///f?inner=m0&action=fail&ops=read,flush", err);
    ASSERT_TRUE(s) << err;
    EXPECT_EQ(s->rule.action, fault_action::fail);
    EXPECT_EQ(s->rule.status, io_status::write_fault);
    EXPECT_EQ(s->rule.ops, op_mask::read | op_mask::flush);
    EXPECT_EQ(s->rule.lba_begin, 0u);
    EXPECT_EQ(s->rule.lba_end, UINT64_MAX);
    EXPECT_EQ(s->rule.count, UINT64_MAX);
    s = parse("fault:///f?inner=m0", err);
    ASSERT_TRUE(s) << err;
    EXPECT_EQ(s->rule.action, fault_action::delay);
    EXPECT_EQ(s->rule.ops, op_mask::all);
}

TEST(fault_uri, errors_name_the_bad_part) {
    std::string err;
    EXPECT_FALSE(parse("fault:///f?ops=write", err));
    EXPECT_NE(err.find("inner"), std::string::npos) << err;
    EXPECT_FALSE(parse("fault:///f?inner=m0&action=explode", err));
    EXPECT_NE(err.find("explode"), std::string::npos) << err;
    EXPECT_FALSE(parse("fault:///f?inner=m0&ops=write,smash", err));
    EXPECT_NE(err.find("smash"), std::string::npos) << err;
    EXPECT_FALSE(parse("fault:///f?inner=m0&delay_ms=soon", err));
    EXPECT_NE(err.find("delay_ms"), std::string::npos) << err;
    EXPECT_FALSE(parse("fault:///f?inner=m0&colour=red", err));
    EXPECT_NE(err.find("colour"), std::string::npos) << err;
}
