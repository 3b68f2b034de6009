// Device URI parsing and the parameter helpers (storage/uri.hh): good URIs of
// every scheme, and bad ones whose message must name the URI and the bad part.
#include <gtest/gtest.h>

#include <string>

#include "storage/uri.hh"

using namespace ioe;

namespace {

device_uri parse_ok(const std::string& text) {
    std::string err;
    auto u = parse_device_uri(text, err);
    EXPECT_TRUE(u.has_value()) << text << ": " << err;
    return u ? *u : device_uri{};
}

// The error message of a URI that must not parse.
std::string parse_error(const std::string& text) {
    std::string err;
    auto u = parse_device_uri(text, err);
    EXPECT_FALSE(u.has_value()) << text << " parsed, path '" << (u ? u->path : "") << "'";
    return err;
}

}  // namespace

TEST(uri, malloc_with_parameters) {
    auto u = parse_ok("malloc:///m0?size_mb=64&blk_size=4096");
    EXPECT_EQ(u.text, "malloc:///m0?size_mb=64&blk_size=4096");
    EXPECT_EQ(u.scheme, "malloc");
    EXPECT_EQ(u.host, "");
    EXPECT_EQ(u.port, 0);
    EXPECT_EQ(u.path, "/m0");
    ASSERT_EQ(u.params.size(), 2u);
    EXPECT_EQ(u.params[0].first, "size_mb");
    EXPECT_EQ(u.params[0].second, "64");
    EXPECT_EQ(u.param("blk_size"), "4096");
    EXPECT_FALSE(u.param("nope").has_value());
}

TEST(uri, scheme_is_lower_cased_and_path_keeps_its_slash) {
    auto u = parse_ok("URING:///dev/nvme0n1");
    EXPECT_EQ(u.scheme, "uring");
    EXPECT_EQ(u.path, "/dev/nvme0n1");
    EXPECT_TRUE(u.params.empty());
}

TEST(uri, nvmf_host_port_and_nqn) {
    auto u = parse_ok("nvmf://10.1.0.7:4420/nqn.2019-05.io.openebs:replica-1");
    EXPECT_EQ(u.scheme, "nvmf");
    EXPECT_EQ(u.host, "10.1.0.7");
    EXPECT_EQ(u.port, 4420);
    EXPECT_EQ(u.path, "/nqn.2019-05.io.openebs:replica-1");

    auto v6 = parse_ok("nvmf://[::1]:4421/nqn.x");
    EXPECT_EQ(v6.host, "::1");
    EXPECT_EQ(v6.port, 4421);
    EXPECT_EQ(v6.path, "/nqn.x");

    auto no_port = parse_ok("nvmf://storage-node/nqn.y");
    EXPECT_EQ(no_port.host, "storage-node");
    EXPECT_EQ(no_port.port, 0);
}

TEST(uri, missing_scheme_is_refused) {
    for (std::string text : {"m0", "/dev/sdb", "://m0", "malloc:/m0", ""}) {
        std::string err = parse_error(text);
        EXPECT_NE(err.find("device URI '" + text + "'"), std::string::npos) << err;
        EXPECT_NE(err.find("no scheme"), std::string::npos) << err;
    }
}

TEST(uri, bad_port_names_the_port) {
    for (std::string port : {"99999", "abc", "0", "", "44x", "-1"}) {
        std::string text = "nvmf://host:" + port + "/nqn";
        std::string err = parse_error(text);
        EXPECT_NE(err.find("device URI '" + text + "'"), std::string::npos) << err;
        EXPECT_NE(err.find("port '" + port + "'"), std::string::npos) << err;
    }
}

TEST(uri, percent_decoding_of_path_and_values) {
    auto u = parse_ok("uring:///data/my%20disk%2Fimg?blk_size=%35%31%32");
    EXPECT_EQ(u.path, "/data/my disk/img");
    EXPECT_EQ(u.param("blk_size"), "512");

    auto lower = parse_ok("malloc:///a%2fb");
    EXPECT_EQ(lower.path, "/a/b");

    for (std::string text : {"uring:///x%zz", "uring:///x%2", "uring:///x%"}) {
        std::string err = parse_error(text);
        EXPECT_NE(err.find("bad percent-encoding in the path"), std::string::npos) << err;
    }
    std::string err = parse_error("malloc:///m?size_mb=1%G0");
    EXPECT_NE(err.find("parameter 'size_mb': bad percent-encoding"), std::string::npos) << err;
}

TEST(uri, duplicate_and_malformed_parameters) {
    std::string err = parse_error("malloc:///m0?size_mb=1&size_mb=2");
    EXPECT_NE(err.find("parameter 'size_mb' given twice"), std::string::npos) << err;

    err = parse_error("malloc:///m0?size_mb");
    EXPECT_NE(err.find("parameter 'size_mb' is not key=value"), std::string::npos) << err;

    err = parse_error("malloc:///m0?=5");
    EXPECT_NE(err.find("parameter '=5' is not key=value"), std::string::npos) << err;

    // Empty items between '&' are skipped.
    auto u = parse_ok("malloc:///m0?&size_mb=1&&");
    EXPECT_EQ(u.params.size(), 1u);
}

TEST(uri, unknown_parameter_names_it_and_lists_the_known_ones) {
    auto u = parse_ok("malloc:///m0?size_mb=1&colour=blue");
    std::string err;
    EXPECT_FALSE(check_params(u, {"size_mb", "blk_size"}, err));
    EXPECT_NE(err.find("device URI 'malloc:///m0?size_mb=1&colour=blue'"), std::string::npos) << err;
    EXPECT_NE(err.find("unknown parameter 'colour' for malloc://"), std::string::npos) << err;
    EXPECT_NE(err.find("known: size_mb, blk_size"), std::string::npos) << err;

    err.clear();
    EXPECT_TRUE(check_params(parse_ok("malloc:///m0?size_mb=1&blk_size=512"), {"size_mb", "blk_size"}, err));
    EXPECT_TRUE(err.empty());

    EXPECT_FALSE(check_params(parse_ok("bdev:///x?a=1"), {}, err));
    EXPECT_NE(err.find("known: none"), std::string::npos) << err;
}

TEST(uri, uint_param_good_default_required_and_bad) {
    std::string err;
    EXPECT_EQ(uint_param(parse_ok("null:///n?size_mb=128"), "size_mb", std::nullopt, err), 128u);
    EXPECT_EQ(uint_param(parse_ok("null:///n"), "size_mb", 7, err), 7u);
    EXPECT_TRUE(err.empty()) << err;

    EXPECT_FALSE(uint_param(parse_ok("null:///n"), "size_mb", std::nullopt, err).has_value());
    EXPECT_NE(err.find("parameter 'size_mb' is required"), std::string::npos) << err;

    for (std::string bad : {"abc", "", "-5", "12x", "1.5", " 3", "99999999999999999999999"}) {
        err.clear();
        std::string text = "null:///n?size_mb=" + bad;
        EXPECT_FALSE(uint_param(parse_ok(text), "size_mb", std::nullopt, err).has_value()) << bad;
        EXPECT_NE(err.find("device URI '" + text + "'"), std::string::npos) << err;
        EXPECT_NE(err.find("parameter 'size_mb': '" + bad + "' is not a whole number"), std::string::npos) << err;
    }
}

TEST(uri, block_size_param_accepts_512_and_4096_only) {
    std::string err;
    EXPECT_EQ(block_size_param(parse_ok("malloc:///m?blk_size=512"), 4096, err), 512u);
    EXPECT_EQ(block_size_param(parse_ok("malloc:///m?blk_size=4096"), 512, err), 4096u);
    EXPECT_EQ(block_size_param(parse_ok("malloc:///m"), 512, err), 512u);
    EXPECT_TRUE(err.empty()) << err;

    for (std::string bad : {"1000", "0", "1024", "8192"}) {
        err.clear();
        EXPECT_FALSE(block_size_param(parse_ok("malloc:///m?blk_size=" + bad), 512, err).has_value()) << bad;
        EXPECT_NE(err.find("blk_size " + bad + " is not supported (512 or 4096)"), std::string::npos) << err;
    }
    err.clear();
    EXPECT_FALSE(block_size_param(parse_ok("malloc:///m?blk_size=big"), 512, err).has_value());
    EXPECT_NE(err.find("parameter 'blk_size': 'big' is not a whole number"), std::string::npos) << err;
}

TEST(uri, error_prefixes_the_uri) {
    auto u = parse_ok("malloc:///m0?size_mb=x");
    EXPECT_EQ(u.error("something is wrong"), "device URI 'malloc:///m0?size_mb=x': something is wrong");
}
