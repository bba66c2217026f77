// Runs libFuzzer from a main of our own. SwiftPM names an executable's entry point
// <Target>_main and aliases main to it, so libFuzzer's own main is never linked; this
// calls its driver with the target's LLVMFuzzerTestOneInput instead.
#ifndef CFUZZER_DRIVER_H
#define CFUZZER_DRIVER_H
int cfuzzer_run(int argc, char **argv);
#endif
