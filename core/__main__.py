from batch_gateway.cli import main

main()
