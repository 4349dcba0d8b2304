/* Range parsing (RFC 9110 §14.1.2): single, suffix and open ranges, merged
 * and separate multiple ranges, unsatisfiable sets, malformed values. */
#include "check.h"
#include "http/range.c"

static void expect(const char *v, uint64_t size, tern__range_result want, uint64_t ws, uint64_t wl) {
    uint64_t s = 12345, l = 12345;
    tern__range_result r = tern__range_parse(v, size, &s, &l);
    if (r != want) fprintf(stderr, "range '%s' size %llu\n", v ? v : "(null)", (unsigned long long)size);
    CHECK_INT(r, want);
    if (want == TERN__RANGE_SINGLE && r == want) {
        CHECK_INT(s, ws);
        CHECK_INT(l, wl);
    }
}

int main(void) {
    expect(NULL, 100, TERN__RANGE_NONE, 0, 0);
    expect("bytes=0-9", 100, TERN__RANGE_SINGLE, 0, 10);
    expect("BYTES=0-9", 100, TERN__RANGE_SINGLE, 0, 10);
    expect("bytes=90-", 100, TERN__RANGE_SINGLE, 90, 10);
    expect("bytes=-10", 100, TERN__RANGE_SINGLE, 90, 10);
    expect("bytes=-1000", 100, TERN__RANGE_SINGLE, 0, 100);   /* suffix longer than the file */
    expect("bytes=50-1000", 100, TERN__RANGE_SINGLE, 50, 50); /* last clipped */
    expect("bytes=99-99", 100, TERN__RANGE_SINGLE, 99, 1);
    expect("bytes= 0-9 , ", 100, TERN__RANGE_SINGLE, 0, 10);
    expect("bytes=0-9,10-19", 100, TERN__RANGE_SINGLE, 0, 20); /* touching: one */
    expect("bytes=0-9,5-14", 100, TERN__RANGE_SINGLE, 0, 15);  /* overlapping: one */
    expect("bytes=0-9,200-300", 100, TERN__RANGE_SINGLE, 0, 10); /* the unsatisfiable one drops */
    expect("bytes=0-9,20-29", 100, TERN__RANGE_MULTI, 0, 0);
    expect("bytes=100-", 100, TERN__RANGE_UNSATISFIABLE, 0, 0);
    expect("bytes=100-200,300-400", 100, TERN__RANGE_UNSATISFIABLE, 0, 0);
    expect("bytes=-0", 100, TERN__RANGE_UNSATISFIABLE, 0, 0);
    expect("bytes=0-0", 0, TERN__RANGE_UNSATISFIABLE, 0, 0); /* an empty file has no bytes */
    expect("bytes=-5", 0, TERN__RANGE_UNSATISFIABLE, 0, 0);
    /* malformed: ignored, the whole representation is sent */
    expect("bytes=9-0", 100, TERN__RANGE_NONE, 0, 0);
    expect("bytes=a-b", 100, TERN__RANGE_NONE, 0, 0);
    expect("bytes=", 100, TERN__RANGE_NONE, 0, 0);
    expect("bytes=-", 100, TERN__RANGE_NONE, 0, 0);
    expect("bytes=1", 100, TERN__RANGE_NONE, 0, 0);
    expect("bytes=0-9;x", 100, TERN__RANGE_NONE, 0, 0);
    expect("items=0-9", 100, TERN__RANGE_NONE, 0, 0);
    expect("bytes=99999999999999999999-", 100, TERN__RANGE_NONE, 0, 0); /* no overflow */
    /* a flood of tiny ranges is not worth answering piecewise */
    char many[2000] = "bytes=";
    for (int i = 0; i < 150; i++) sprintf(many + strlen(many), "%d-%d,", i * 10, i * 10);
    expect(many, 10000, TERN__RANGE_NONE, 0, 0);
    return check_done();
}
