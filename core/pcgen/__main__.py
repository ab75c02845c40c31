from pcgen.cli import main

main()
