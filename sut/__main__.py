import sys

from sut.main import main

sys.exit(main())
