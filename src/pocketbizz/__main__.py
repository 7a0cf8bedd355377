from pocketbizz.cli import main

main()
