//! natter-website integration tests.
