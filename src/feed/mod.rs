pub mod fake_sei;
