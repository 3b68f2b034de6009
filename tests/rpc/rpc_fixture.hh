// What the control-plane tests share: an engine per test reached through
// either face (RPC client or embedded handle), a scratch directory, and
// EXPECT_CODE for the storage_error a call must raise.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "rpc/client.hh"
#include "rpc/embedded.hh"
#include "runtime/cores.hh"

namespace ioe::test {

using namespace ioe::rpc;

#define EXPECT_CODE(stmt, c)                                                                          \
    do {                                                                                              \
        try {                                                                                         \
            stmt;                                                                                     \
            ADD_FAILURE() << #stmt << " succeeded, expected " << to_string(c);                        \
        } catch (const storage_error& e) {                                                            \
            EXPECT_EQ(e.code, c) << #stmt << ": " << to_string(e.code) << ": " << e.what();           \
            EXPECT_GT(std::strlen(e.what()), 10u) << "a message a person can act on";                 \
        }                                                                                             \
    } while (0)

struct temp_dir {
    std::string path;
    temp_dir() {
        char t[] = "/tmp/ioe-rpc-XXXXXX";
        path = ::mkdtemp(t);
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
};

inline unsigned test_shards() { return allowed_cores().size() >= 2 ? 2 : 1; }

inline embedded_options options_for(const std::string& dir) {
    embedded_options o;
    o.shards = test_shards();
    o.dma_mb = 32;
    o.nvmf_listen = "127.0.0.1:0";
    o.rpc = {"127.0.0.1:0", "unix:" + dir + "/rpc.sock"};
    o.data_dir = dir;
    return o;
}

inline void make_file(const std::string& path, std::uint64_t bytes) {
    std::ofstream(path).close();
    std::filesystem::resize_file(path, bytes);
}

// The same tests through both faces.
enum class face { rpc, embedded };

class control : public ::testing::TestWithParam<face> {
protected:
    void SetUp() override {
        eng = std::make_unique<embedded>(options_for(dir.path));
        if (GetParam() == face::rpc) {
            client = std::make_unique<rpc_client>(eng->rpc_addresses().at(0));
            api = client.get();
        } else {
            api = eng.get();
        }
    }
    void TearDown() override {
        client.reset();
        eng.reset();
    }
    temp_dir dir;
    std::unique_ptr<embedded> eng;
    std::unique_ptr<rpc_client> client;
    node_api* api = nullptr;
};

}  // namespace ioe::test
