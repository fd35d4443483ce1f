#!/bin/sh
# slidegrade evaluate through the command line. The expected kappas were computed once with
# scikit-learn: cohen_kappa_score(truth, pred, labels=range(6), weights="quadratic") gives
# 0.8689 overall, 0.7692 for karolinska and 0.9412 for radboud on these ten slides.
# Usage: test_evaluate_cli.sh path/to/slidegrade
SG=$1
. "$(dirname "$0")/../support/cli_test.sh"
cat >"$DIR/truth.csv" <<'CSV'
image_id,data_provider,isup_grade,gleason_score
a1,karolinska,0,0+0
a2,karolinska,1,3+3
a3,karolinska,2,3+4
a4,karolinska,5,4+5
a5,radboud,0,negative
a6,radboud,3,4+3
a7,radboud,4,4+4
a8,radboud,5,5+5
a9,karolinska,4,3+5
a10,radboud,1,3+3
CSV
printf 'image_id,isup_grade\na1,0\na2,2\na3,2\na4,4\na5,1\na6,3\na7,5\na8,5\na9,2\na10,1\n' >"$DIR/pred.csv"
expect 0 "QWK: 0.8689" "$SG" evaluate --truth "$DIR/truth.csv" --pred "$DIR/pred.csv"
expect 0 "QWK karolinska: 0.7692 (5 slides" "$SG" evaluate --truth "$DIR/truth.csv" --pred "$DIR/pred.csv"
expect 0 "QWK radboud: 0.9412 (5 slides" "$SG" evaluate --truth "$DIR/truth.csv" --pred "$DIR/pred.csv"
expect 0 "accuracy: 0.5000" "$SG" evaluate --truth "$DIR/truth.csv" --pred "$DIR/pred.csv"
# Columns in another order, CRLF line ends.
printf 'isup_grade,image_id\r\n0,a1\r\n2,a2\r\n2,a3\r\n4,a4\r\n1,a5\r\n3,a6\r\n5,a7\r\n5,a8\r\n2,a9\r\n1,a10\r\n' >"$DIR/pred2.csv"
expect 0 "QWK: 0.8689" "$SG" evaluate --truth "$DIR/truth.csv" --pred "$DIR/pred2.csv"
# Bad input: one message naming the file and line, exit 1.
printf 'image_id,isup_grade\na1,0\na2,7\n' >"$DIR/bad_grade.csv"
expect 1 "$DIR/bad_grade.csv: line 3: a2: isup_grade '7' is not an integer 0-5" "$SG" evaluate --truth "$DIR/truth.csv" --pred "$DIR/bad_grade.csv"
printf 'image_id,isup_grade\na1,0\nzz,1\n' >"$DIR/unknown.csv"
expect 1 "$DIR/unknown.csv: line 3: zz is not in" "$SG" evaluate --truth "$DIR/truth.csv" --pred "$DIR/unknown.csv"
printf 'image_id,isup_grade\na1,0\na2,1\n' >"$DIR/partial.csv"
expect 1 "8 of the 10 slides in" "$SG" evaluate --truth "$DIR/truth.csv" --pred "$DIR/partial.csv"
expect 0 "slides scored: 2 (8 in the truth without a prediction, left out)" "$SG" evaluate --truth "$DIR/truth.csv" --pred "$DIR/partial.csv" --partial
expect 1 "$DIR/missing.csv" "$SG" evaluate --truth "$DIR/truth.csv" --pred "$DIR/missing.csv"
[ "$FAILED" -eq 0 ] && echo "evaluate CLI: all passed"
exit "$FAILED"
