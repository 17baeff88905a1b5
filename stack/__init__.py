"""`batch-gateway up`: the whole system on one machine, embedded servers where no URL is given."""
