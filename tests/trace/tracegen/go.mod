module collectord/tests/trace/tracegen

go 1.19
