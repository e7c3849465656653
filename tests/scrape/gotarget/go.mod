module collectord/tests/scrape/gotarget

go 1.19
