"""What the processors and the gc share about batch results: reading a batch's requests, its
result lines, the lines of requests that were never executed, and publishing result files."""
