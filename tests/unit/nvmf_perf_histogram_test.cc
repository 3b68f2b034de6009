// nvmf-perf's fixed-bucket latency histogram (tools/nvmf-perf/latency_histogram.hh):
// percentiles within a bucket's width (1/64 of the value) of the exact
// nearest-rank figure on uniform, skewed and single-value data; exact
// count, mean, min and max; merging equals recording into one; values past
// the last bucket clamp to it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "tools/nvmf-perf/latency_histogram.hh"

using ioe::perf::latency_histogram;

namespace {

double exact_percentile(std::vector<std::uint64_t> v, double q) {
    std::sort(v.begin(), v.end());
    auto rank = static_cast<std::size_t>(q / 100.0 * double(v.size()) + 0.999999);
    rank = std::clamp<std::size_t>(rank, 1, v.size());
    return double(v[rank - 1]);
}

void expect_close(const latency_histogram& h, const std::vector<std::uint64_t>& v, double q) {
    const double want = exact_percentile(v, q);
    EXPECT_NEAR(h.percentile_ns(q), want, want / 64.0 + 1.0) << "p" << q;
}

}  // namespace

TEST(nvmf_perf_histogram, percentiles_match_exact_figures) {
    auto h = std::make_unique<latency_histogram>();
    std::vector<std::uint64_t> v;
    std::uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 200000; ++i) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        // Mostly 10-60 us, a tail up to 20 ms.
        const std::uint64_t ns = (i % 100 == 0) ? 1'000'000 + x % 19'000'000 : 10'000 + x % 50'000;
        v.push_back(ns);
        h->add(ns);
    }
    for (double q : {1.0, 50.0, 90.0, 99.0, 99.9, 100.0}) expect_close(*h, v, q);
    EXPECT_EQ(h->count(), v.size());
    EXPECT_EQ(h->min_ns(), *std::min_element(v.begin(), v.end()));
    EXPECT_EQ(h->max_ns(), *std::max_element(v.begin(), v.end()));
    double sum = 0;
    for (auto n : v) sum += double(n);
    EXPECT_DOUBLE_EQ(h->mean_ns(), sum / double(v.size()));
}

TEST(nvmf_perf_histogram, small_values_are_exact_and_one_value_is_itself) {
    auto h = std::make_unique<latency_histogram>();
    for (std::uint64_t ns = 0; ns < 64; ++ns) h->add(ns);
    EXPECT_EQ(h->percentile_ns(50), 31);  // rank 32 of 0..63
    EXPECT_EQ(h->percentile_ns(100), 63);
    auto one = std::make_unique<latency_histogram>();
    one->add(123456);
    EXPECT_EQ(one->percentile_ns(50), 123456);  // clamped to [min, max]
    EXPECT_EQ(one->percentile_ns(99.9), 123456);
    auto empty = std::make_unique<latency_histogram>();
    EXPECT_EQ(empty->percentile_ns(50), 0);
    EXPECT_EQ(empty->min_ns(), 0u);
}

TEST(nvmf_perf_histogram, merge_equals_one_histogram) {
    auto a = std::make_unique<latency_histogram>();
    auto b = std::make_unique<latency_histogram>();
    auto all = std::make_unique<latency_histogram>();
    for (std::uint64_t i = 1; i < 5000; ++i) {
        const std::uint64_t ns = i * 997;
        (i % 3 ? *a : *b).add(ns);
        all->add(ns);
    }
    a->merge(*b);
    EXPECT_EQ(a->count(), all->count());
    EXPECT_EQ(a->min_ns(), all->min_ns());
    EXPECT_EQ(a->max_ns(), all->max_ns());
    for (double q : {50.0, 99.0, 99.9}) EXPECT_EQ(a->percentile_ns(q), all->percentile_ns(q));
}

TEST(nvmf_perf_histogram, huge_values_land_in_the_last_bucket) {
    EXPECT_EQ(latency_histogram::bucket_of(std::uint64_t{1} << 50), latency_histogram::bucket_count - 1);
    auto h = std::make_unique<latency_histogram>();
    h->add(std::uint64_t{1} << 50);
    EXPECT_EQ(h->count(), 1u);
    EXPECT_EQ(h->max_ns(), std::uint64_t{1} << 50);
    // Buckets are contiguous and increasing: each starts where the last ended.
    for (std::size_t i = 1; i < latency_histogram::bucket_count; ++i) {
        ASSERT_EQ(latency_histogram::bucket_low(i),
                  latency_histogram::bucket_low(i - 1) + latency_histogram::bucket_width(i - 1))
            << "bucket " << i;
        ASSERT_EQ(latency_histogram::bucket_of(latency_histogram::bucket_low(i)), i);
    }
}
