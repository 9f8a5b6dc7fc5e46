"""`batchplane replay`: what a candidate policy would have decided for the jobs a table recorded."""
