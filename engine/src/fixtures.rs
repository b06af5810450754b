//! Rule fixtures: events with the verdicts a rule must give them, run before the rule is activated.
