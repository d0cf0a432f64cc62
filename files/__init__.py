"""Files at the edge of the pure core: outcome files, question sets, trained models and evaluation reports.

The CLI, the gateway, the benchmarks and the tests read and write through here; nothing below (`oracle`,
`features`, `allocator`, `answers`) touches a file.
"""
