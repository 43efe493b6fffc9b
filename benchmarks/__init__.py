"""Benchmarks of lambda_keras; run from the repository root as modules."""
