module collectord/tests/fleet

go 1.19
