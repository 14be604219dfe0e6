#include "worker/http/query_string.h"

#include <gtest/gtest.h>

namespace weir {
namespace {

TEST(QueryParam, FindsTheFirstParameterOfThatName) {
  bool found = true;
  EXPECT_EQ(http::query_param("/p?a=1&b=2", "b", &found), "2");
  EXPECT_TRUE(found);
  EXPECT_EQ(http::query_param("/p?a=1&b=2", "a", &found), "1");
  EXPECT_TRUE(found);
  EXPECT_EQ(http::query_param("/p?a=1&b=2", "c", &found), "");
  EXPECT_FALSE(found);
  EXPECT_EQ(http::query_param("/p", "a", &found), "");
  EXPECT_FALSE(found);
  // Names match exactly, not by prefix or suffix.
  EXPECT_EQ(http::query_param("/p?ab=1&ba=2&a=3", "a", &found), "3");
  EXPECT_TRUE(found);
  // The first occurrence wins.
  EXPECT_EQ(http::query_param("/p?a=1&a=2", "a", &found), "1");
  EXPECT_TRUE(found);
  // Present without a value, or with an empty one: found, empty.
  found = false;
  EXPECT_EQ(http::query_param("/p?a&b=2", "a", &found), "");
  EXPECT_TRUE(found);
  found = false;
  EXPECT_EQ(http::query_param("/p?a=&b=2", "a", &found), "");
  EXPECT_TRUE(found);
  // Empty pairs are skipped; the fragment is not part of the query.
  EXPECT_EQ(http::query_param("/p?&&b=2", "b", &found), "2");
  EXPECT_TRUE(found);
  EXPECT_EQ(http::query_param("/p?a=1#frag", "a", &found), "1");
  EXPECT_TRUE(found);
  EXPECT_EQ(http::query_param("/p?a=1#b=2", "b", &found), "");
  EXPECT_FALSE(found);
  // The value keeps everything after the first '='.
  EXPECT_EQ(http::query_param("/p?t=a=b", "t", &found), "a=b");
  EXPECT_TRUE(found);
}

// The fragment of an edited target (set_uri may write one) is not part of the
// query: url_param() in rules and `balance: url_param` read the same value.
TEST(QueryParam, AFragmentEndsTheQuery) {
  bool found = false;
  EXPECT_EQ(http::query_param("/p?a=1&b=2#c=3", "b", &found), "2");
  EXPECT_TRUE(found);
  EXPECT_EQ(http::query_param("/p?a=1&b=2#c=3", "c", &found), "");
  EXPECT_FALSE(found);
  EXPECT_EQ(http::query_param("/p#x?a=1", "a", &found), "");
  EXPECT_FALSE(found);
  EXPECT_EQ(http::query_param("http://example.com/p?a=1#f", "a", &found), "1");
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace weir
