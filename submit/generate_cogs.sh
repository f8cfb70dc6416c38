#!/bin/bash
# cog-pipeline node executable: converts one GeoTIFF into a Cloud Optimized GeoTIFF that keeps
# the input's name, plus a JPEG preview <stem>.jpg, in the job's scratch directory.
#   generate_cogs.sh INFILE BANDS
# Any failure exits non-zero, so DAGMan's node retries apply and post records the row as failed.
set -euo pipefail

if [ "$#" -ne 2 ]; then
  echo "usage: generate_cogs.sh INFILE BANDS" >&2
  exit 2
fi
infile=$1
bands=$2
if [ ! -f "$infile" ]; then
  echo "generate_cogs.sh: input image '$infile' is not here (was it transferred?)" >&2
  exit 1
fi
case "$bands" in
  '' | *[!0-9]*)
    echo "generate_cogs.sh: band count '$bands' is not a whole number" >&2
    exit 2
    ;;
esac

stem=${infile%.*}
cog_tmp="$infile.cog-tmp.tif"
trap 'rm -f -- "$cog_tmp"' EXIT

echo "converting $infile to a COG (LZW)"
if ! gdal_translate -q "$infile" "$cog_tmp" -of COG -co COMPRESS=LZW; then
  echo "generate_cogs.sh: gdal_translate could not convert '$infile' to a COG" >&2
  exit 1
fi
mv -f -- "$cog_tmp" "$infile"

# Previews: one band (grey) and three bands (RGB) as they are; a second band is taken to be
# alpha and left out; four or more (RGB plus NIR or alpha) keep bands 1-3.
case "$bands" in
  1 | 3) band_args=() ;;
  2) band_args=(-b 1) ;;
  *) band_args=(-b 1 -b 2 -b 3) ;;
esac
echo "writing preview $stem.jpg (quality 80, $bands band(s) in)"
if ! gdal_translate -q "${band_args[@]}" -of JPEG -co QUALITY=80 "$infile" "$stem.jpg"; then
  echo "generate_cogs.sh: gdal_translate could not write the preview '$stem.jpg'" >&2
  exit 1
fi

# GDAL's side files are not outputs; leave only the COG and the JPEG to transfer back.
rm -f -- ./*.aux.xml
echo "done: $infile and $stem.jpg"
