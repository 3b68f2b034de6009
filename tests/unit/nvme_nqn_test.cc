// NQN format rules (nvme/spec/nqn.hh): what a share's --nqn may be.
#include <gtest/gtest.h>

#include <string>

#include "nvme/spec/nqn.hh"

namespace ioe::nvme {
namespace {

TEST(nvme_nqn, accepts_both_forms) {
    EXPECT_EQ(check_nqn("nqn.2019-05.io.ioengine:r1"), "");
    EXPECT_EQ(check_nqn("nqn.2014-08.com.example:nvme:nvm-subsystem-sn-d78432"), "");
    EXPECT_EQ(check_nqn("nqn.2014-08.org.nvmexpress:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"), "");
}

TEST(nvme_nqn, refuses_what_breaks_a_rule) {
    EXPECT_NE(check_nqn(""), "");
    EXPECT_NE(check_nqn("not-an-nqn"), "");
    EXPECT_NE(check_nqn("nqn.19-05.io.x:a"), "");
    EXPECT_NE(check_nqn("nqn.2019-13.io.x:a"), "") << "month 13";
    EXPECT_NE(check_nqn("nqn.2019-05.io.x"), "") << "no ':' and name";
    EXPECT_NE(check_nqn("nqn.2019-05.io.x:"), "") << "empty name";
    EXPECT_NE(check_nqn("nqn.2019-05.io x:a"), "") << "a space";
    EXPECT_NE(check_nqn("nqn.2019-05.io_x:a"), "") << "'_' in the domain";
    EXPECT_NE(check_nqn("nqn.2014-08.org.nvmexpress:uuid:not-a-uuid"), "");
    EXPECT_NE(check_nqn("nqn.2014-08.org.nvmexpress.discovery"), "") << "reserved";
    EXPECT_NE(check_nqn("nqn.2019-05.io.x:" + std::string(220, 'a')), "") << "longer than 223 bytes";
}

}  // namespace
}  // namespace ioe::nvme
