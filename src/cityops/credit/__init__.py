"""Enterprise credit supervision (鹤信码): the register of business entities and their credit codes."""
