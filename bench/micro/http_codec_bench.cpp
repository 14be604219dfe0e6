// Micro-benchmarks of the HTTP/1.1 codec: the cost of parsing a typical request
// and response head, and of walking a chunked body.

#include <benchmark/benchmark.h>

#include <string>

#include "worker/http/h1/http_codec.h"

namespace {

const std::string kRequest =
    "GET /api/v1/items?id=12345&sort=asc HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Cookie: session=0123456789abcdef; theme=dark\r\n"
    "Connection: keep-alive\r\n\r\n";

const std::string kResponse =
    "HTTP/1.1 200 OK\r\n"
    "Server: nginx/1.22.1\r\n"
    "Date: Thu, 26 Nov 2026 01:00:00 GMT\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Length: 1024\r\n"
    "Last-Modified: Thu, 26 Nov 2026 00:00:00 GMT\r\n"
    "Connection: keep-alive\r\n"
    "ETag: \"6564a3c0-400\"\r\n"
    "Accept-Ranges: bytes\r\n\r\n";

void BM_ParseRequest(benchmark::State& state) {
  weir::http::MessageHead h;
  for (auto _ : state) {
    size_t scan = 0;
    auto st = weir::http::parse_request(kRequest.data(), kRequest.size(), 16384, &scan, &h);
    benchmark::DoNotOptimize(st);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRequest.size()));
}
BENCHMARK(BM_ParseRequest);

void BM_ParseResponse(benchmark::State& state) {
  weir::http::MessageHead h;
  for (auto _ : state) {
    size_t scan = 0;
    auto st =
        weir::http::parse_response(kResponse.data(), kResponse.size(), 16384, &scan, "GET", &h);
    benchmark::DoNotOptimize(st);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kResponse.size()));
}
BENCHMARK(BM_ParseResponse);

void BM_ChunkedWalk64k(benchmark::State& state) {
  std::string body;
  for (int i = 0; i < 16; ++i) body += "1000\r\n" + std::string(4096, 'x') + "\r\n";
  body += "0\r\n\r\n";
  for (auto _ : state) {
    weir::http::ChunkedWalker w;
    benchmark::DoNotOptimize(w.feed(body.data(), body.size()));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_ChunkedWalk64k);

}  // namespace
