#!/bin/bash
# cog-pipeline node executable: converts one GeoTIFF into a Cloud Optimized GeoTIFF that keeps
# the input's name, plus an 8-bit JPEG preview <stem>.jpg, in the job's scratch directory.
#
#   generate_cogs.sh INFILE BANDS      convert INFILE (BANDS: the manifest's band count)
#   generate_cogs.sh --check-cog FILE  only check that FILE is a valid COG, as the conversion does
#
# The image decides, not the manifest: band count, data type, colour interpretation, nodata and
# alpha/mask are read from the image (gdalinfo -json). A manifest band count that differs is
# reported on stderr and otherwise ignored. The rules are in README.md, "Previews and COGs".
#
# Any failure exits non-zero with the reason as the last line on stderr (GDAL's own "ERROR n:"
# line, when GDAL failed, is kept as GDAL wrote it: the post step quotes it). On failure nothing
# is left behind: INFILE is untouched and no JPEG is written, so nothing stale is transferred.
# Needs bash, coreutils, awk, sed and GDAL's command-line tools (no Python, no jq).
set -euo pipefail

# No GDAL side files (.aux.xml): only the COG and the JPEG may be left in the scratch directory.
export GDAL_PAM_ENABLED=NO

readonly JPEG_QUALITY=80           # as the Python tool
readonly JPEG_MAX_SIZE=65500       # JPEG cannot be wider or taller than this
readonly BIGTIFF_ABOVE=2147483648  # 2 GiB: see "The COG" below
readonly STRETCH_LOW=2             # percentiles of the preview stretch for 16-bit and float data
readonly STRETCH_HIGH=98
readonly SAMPLE_SIZE=1024          # the stretch is computed on a sample at most this wide and high

die() {
  echo "generate_cogs.sh: $*" >&2
  exit 1
}
note() {
  echo "generate_cogs.sh: note: $*" >&2
}

# A path GDAL cannot mistake for an option (-x.tif) or a driver prefix (GTiff:x.tif, /vsi...).
gdal_path() {
  case $1 in
    /*) printf '%s' "$1" ;;
    *) printf './%s' "$1" ;;
  esac
}

# run_gdal REASON COMMAND...: runs a GDAL command with its messages set aside. When it fails,
# they go to stderr as GDAL wrote them, followed by REASON, and the script stops. When it
# succeeds, its warnings go to stderr marked "gdal said:", so that post never takes one of them
# for the reason of a later failure.
run_gdal() {
  local reason=$1
  shift
  if "$@" 2>"$work/gdal.log"; then
    sed 's/^/generate_cogs.sh: gdal said: /' "$work/gdal.log" >&2
    return 0
  fi
  cat "$work/gdal.log" >&2
  die "$reason"
}

# gdalinfo -json prints one value per line. This turns it into path=value lines, e.g.
# "bands.0.type=UInt16", "bands.2.mask.flags.0=PER_DATASET", "size.1=400" (arrays count from 0,
# strings lose their quotes). Only gdalinfo's own pretty-printed layout is supported.
flatten_json() {
  awk '
    {
      s = $0; sub(/^[ \t]+/, "", s); sub(/,$/, "", s)
      if (s == "}" || s == "]") { depth--; next }
      if (match(s, /^"([^"\\]|\\.)*":/)) { key = substr(s, 2, RLENGTH - 3); s = substr(s, RLENGTH + 1) }
      else if (depth > 0) key = count[depth]++
      else key = ""
      path = (depth > 0 && prefix[depth] != "") ? prefix[depth] "." key : key
      if (s == "{" || s == "[") { depth++; prefix[depth] = path; count[depth] = 0; next }
      if (s ~ /^".*"$/) s = substr(s, 2, length(s) - 2)
      print path "=" s
    }'
}

# value_of KEY: the value of KEY in the flattened gdalinfo output held in $info ("" if absent).
value_of() {
  awk -v key="$1=" 'index($0, key) == 1 { print substr($0, length(key) + 1); exit }' <<<"$info"
}

# count_lines REGEX: how many lines of $info match REGEX (0 included, unlike grep -c).
count_lines() {
  awk -v re="$1" '$0 ~ re { n++ } END { print n + 0 }' <<<"$info"
}

# band1_mask_flags: GDAL's mask flags of band 1 in $info, e.g. "ALL_VALID", "PER_DATASET ALPHA", "NODATA".
band1_mask_flags() {
  awk -F= '/^bands[.]0[.]mask[.]flags[.]/ { printf "%s%s", sep, $2; sep = " " }' <<<"$info"
}

# join_lines: the lines on stdin as one line, separated by "; ".
join_lines() {
  awk 'NR > 1 { printf "; " } { printf "%s", $0 } END { print "" }'
}

# read_info FILE [gdalinfo options]: sets $info to the flattened gdalinfo -json of FILE.
read_info() {
  local file=$1
  shift
  info=$(run_gdal "GDAL cannot read '${file#./}' as an image" gdalinfo -json "$@" "$file" | flatten_json) || exit 1
}

# ---------------------------------------------------------------------------------------------
# The COG check: the rules of GDAL's validate_cloud_optimized_geotiff.py, with CLI tools only.
# ---------------------------------------------------------------------------------------------

# tiff_header FILE: sets $endian (little or big) and $bigtiff (yes or no) from the TIFF header.
tiff_header() {
  case $(head -c 2 -- "$1") in
    II) endian=little ;;
    MM) endian=big ;;
    *) return 1 ;;
  esac
  case $(read_uint "$1" 2 2) in
    42) bigtiff=no ;;
    43) bigtiff=yes ;;
    *) return 1 ;;
  esac
}

# read_uint FILE OFFSET BYTES: the unsigned integer of BYTES bytes at OFFSET, in $endian order.
read_uint() {
  od -An -v -t "u$3" -j "$2" -N "$3" --endian="$endian" -- "$1" | tr -d ' \n'
}

# tiff_images FILE: one line per image (IFD) of a TIFF, in the file's order:
#   IFD_OFFSET KIND WIDTH HEIGHT TILED FIRST_BLOCK_OFFSET
# KIND is image, overview or mask (TIFF NewSubfileType); TILED is yes or no.
tiff_images() {
  local file=$1 ifd entries size_bytes count_bytes entry_bytes
  tiff_header "$file" || { echo "not a TIFF file" >&2; return 1; }
  if [ "$bigtiff" = yes ]; then
    ifd=$(read_uint "$file" 8 8) count_bytes=8 entry_bytes=20 size_bytes=8
  else
    ifd=$(read_uint "$file" 4 4) count_bytes=2 entry_bytes=12 size_bytes=4
  fi
  local seen=0
  while [ "$ifd" -ne 0 ]; do
    seen=$((seen + 1))
    [ "$seen" -le 1000 ] || { echo "more than 1000 images: the IFD chain loops" >&2; return 1; }
    entries=$(read_uint "$file" "$ifd" "$count_bytes")
    # Tags wanted: 254 NewSubfileType, 256/257 width/height, 322 TileWidth, 273/324 Strip/TileOffsets.
    local subfile=0 width=0 height=0 tiled=no data_type=0 data_count=0 data_value=0 tag type count value
    while read -r tag type count value; do
      case $tag in
        254) subfile=$value ;;
        256) width=$value ;;
        257) height=$value ;;
        322) tiled=yes ;;
        273 | 324) data_type=$type; data_count=$count; data_value=$value ;;
      esac
    done < <(od -An -v -tu1 -j $((ifd + count_bytes)) -N $((entries * entry_bytes)) -- "$file" |
      awk -v le="$([ "$endian" = little ] && echo 1 || echo 0)" -v field="$size_bytes" -v entry="$entry_bytes" '
        function num(at, len,   v, i) {
          v = 0
          for (i = 0; i < len; i++) v = v * 256 + b[le ? at + len - 1 - i : at + i]
          return v
        }
        { for (i = 1; i <= NF; i++) b[n++] = $i }
        END {
          for (e = 0; e + entry <= n; e += entry) {
            type = num(e + 2, 2); count = num(e + 4, field)
            size = (type == 3) ? 2 : (type == 16) ? 8 : 4   # SHORT, LONG8, else LONG
            value = (count * size > field) ? num(e + 4 + field, field) : num(e + 4 + field, size)
            printf "%d %d %.0f %.0f\n", num(e, 2), type, count, value
          }
        }')
    # The first block's offset: in the entry itself when there is one block, else in an array.
    local first_block=$data_value
    if [ "$data_count" -gt 1 ]; then
      first_block=$(read_uint "$file" "$data_value" "$([ "$data_type" = 16 ] && echo 8 || echo 4)")
    fi
    local kind=image
    if [ $((subfile & 4)) -ne 0 ]; then kind=mask; elif [ $((subfile & 1)) -ne 0 ]; then kind=overview; fi
    echo "$ifd $kind $width $height $tiled $first_block"
    ifd=$(read_uint "$file" $((ifd + count_bytes + entries * entry_bytes)) "$size_bytes")
  done
}

# check_cog FILE: prints why FILE is not a valid COG, one reason a line; returns 1 if it is not.
# Checked, as GDAL's validator does: a GeoTIFF, no external .ovr, LAYOUT=COG (GDAL's COG header,
# not edited since), the first IFD right after that header, images over 512 pixels tiled and
# with overviews, overviews smaller and smaller, IFDs before the pixel data, and the pixel data
# of the smallest overview first and of the full image last. Also LZW compression, which this
# pipeline asks for. (Not checked: the validator's optional per-block leader/trailer bytes.)
check_cog() {
  local file=$1 problems=() info images width height header ghost expected_ifd
  info=$(gdalinfo -json "$file" 2>/dev/null | flatten_json) || true
  [ "$(value_of driverShortName)" = GTiff ] || { echo "GDAL cannot read it as a GeoTIFF"; return 1; }
  [ -z "$(value_of files.1)" ] || problems+=("its overviews are in an external file ($(value_of files.1))")
  [ "$(value_of metadata.IMAGE_STRUCTURE.LAYOUT)" = COG ] ||
    problems+=("GDAL does not report LAYOUT=COG (no COG header, or the file was edited after it was written)")
  local compression
  compression=$(value_of metadata.IMAGE_STRUCTURE.COMPRESSION)
  [ "$compression" = LZW ] || problems+=("compression is ${compression:-none}, not LZW")

  images=$(tiff_images "$file" 2>&1) || { problems+=("its TIFF structure cannot be read: $images"); printf '%s\n' "${problems[@]}"; return 1; }
  tiff_header "$file"
  # GDAL's COG header sits right after the TIFF header; the first IFD must follow it.
  header=$([ "$bigtiff" = yes ] && echo 16 || echo 8)
  ghost=$(head -c $((header + 43)) -- "$file" | tail -c 43 | tr -d '\000')
  # ($(...) drops the header line's final newline)
  if [[ $ghost =~ ^GDAL_STRUCTURAL_METADATA_SIZE=([0-9]{6})\ bytes$ ]]; then
    expected_ifd=$((header + 43 + 10#${BASH_REMATCH[1]}))
    expected_ifd=$((expected_ifd + expected_ifd % 2))
    if head -c "$expected_ifd" -- "$file" | grep -aq 'KNOWN_INCOMPATIBLE_EDITION=YES'; then
      problems+=("KNOWN_INCOMPATIBLE_EDITION=YES is declared in the file")
    fi
  else
    expected_ifd=$header
  fi

  # The full-resolution image and its overviews (masks left aside), largest first.
  local levels
  levels=$(awk '$2 != "mask"' <<<"$images" | sort -k3,3nr -k4,4nr -s)
  read -r _ _ width height _ _ <<<"$(head -n 1 <<<"$levels")"
  local first_ifd
  first_ifd=$(head -n 1 <<<"$images" | cut -d' ' -f1)
  [ "$first_ifd" = "$expected_ifd" ] || problems+=("the first IFD is at byte $first_ifd, not $expected_ifd right after the header")
  [ "$(head -n 1 <<<"$images" | cut -d' ' -f2)" = image ] || problems+=("the first image is not the full-resolution image")
  local overviews
  overviews=$(($(wc -l <<<"$levels") - 1))
  if [ "$width" -gt 512 ] || [ "$height" -gt 512 ]; then
    [ "$overviews" -ge 1 ] || problems+=("it is ${width}x${height} pixels but has no overviews")
    if grep -q ' no [0-9]*$' <<<"$levels"; then problems+=("it is ${width}x${height} pixels but not tiled"); fi
  fi
  # Going down the levels: each smaller, its IFD later, its pixel data earlier in the file.
  local prev_w='' prev_h='' prev_ifd='' prev_data='' level=-1 ifd kind w h tiled data name
  while read -r ifd kind w h tiled data; do
    name=$([ "$level" -lt 0 ] && echo "the full-resolution image" || echo "overview $level")
    if [ -n "$prev_w" ]; then
      { [ "$w" -lt "$prev_w" ] || [ "$h" -lt "$prev_h" ]; } || problems+=("$name is not smaller than the level above it")
      [ "$ifd" -gt "$prev_ifd" ] || problems+=("the IFD of $name comes before the one of the level above it")
      [ "$data" -lt "$prev_data" ] || problems+=("the pixel data of $name come after those of the level above it")
    fi
    prev_w=$w prev_h=$h prev_ifd=$ifd prev_data=$data level=$((level + 1))
  done <<<"$levels"
  local last_ifd
  last_ifd=$(sort -k1,1n <<<"$images" | tail -n 1 | cut -d' ' -f1)
  [ "$prev_data" -gt "$last_ifd" ] || problems+=("pixel data start before the last IFD (the IFDs are not all at the start)")

  [ "${#problems[@]}" -eq 0 ] && return 0
  printf '%s\n' "${problems[@]}"
  return 1
}

# ---------------------------------------------------------------------------------------------
# --check-cog FILE
# ---------------------------------------------------------------------------------------------
if [ "${1-}" = --check-cog ]; then
  [ "$#" -eq 2 ] || { echo "usage: generate_cogs.sh --check-cog FILE" >&2; exit 2; }
  [ -f "$2" ] || die "'$2' is not here"
  if problems=$(check_cog "$(gdal_path "$2")"); then
    echo "$2: a valid COG"
    exit 0
  fi
  die "'$2' is not a valid COG: $(join_lines <<<"$problems")"
fi

# ---------------------------------------------------------------------------------------------
# generate_cogs.sh INFILE BANDS
# ---------------------------------------------------------------------------------------------
if [ "$#" -ne 2 ]; then
  echo "usage: generate_cogs.sh INFILE BANDS" >&2
  echo "       generate_cogs.sh --check-cog FILE" >&2
  exit 2
fi
infile=$1
manifest_bands=$2
if [ ! -f "$infile" ]; then
  die "input image '$infile' is not here (was it transferred?)"
fi
case "$manifest_bands" in
  '' | *[!0-9]*)
    echo "generate_cogs.sh: band count '$manifest_bands' is not a whole number" >&2
    exit 2
    ;;
esac

src=$(gdal_path "$infile")
stem=${infile%.*}
name=${infile##*/}
# Everything temporary lives in one directory next to the input, removed on any exit.
work=$(mktemp -d "$(dirname -- "$src")/.generate_cogs.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
cog="$work/cog.tif"
jpeg="$work/preview.jpg"

# --- What the image is -----------------------------------------------------------------------
read_info "$src"
driver=$(value_of driverShortName)
if [ "$driver" != GTiff ]; then
  die "'$name' is not a GeoTIFF: GDAL reads it as $(value_of driverLongName) ($driver)"
fi
if [ -n "$(value_of metadata.SUBDATASETS.SUBDATASET_2_NAME)" ]; then
  die "'$name' holds several images (TIFF pages); only single-image GeoTIFFs are converted"
fi
width=$(value_of size.0)
height=$(value_of size.1)
band_count=$(count_lines '^bands[.][0-9]+[.]band=')
[ "$band_count" -ge 1 ] || die "'$name' has no bands"
data_type=$(value_of bands.0.type)
nodata=$(value_of bands.0.noDataValue)
mask_flags=$(band1_mask_flags)
interps=()
for ((b = 0; b < band_count; b++)); do interps+=("$(value_of "bands.$b.colorInterpretation")"); done
described="$band_count band(s) of $data_type (${interps[*]})${nodata:+, nodata $nodata}"
echo "$name: ${width}x${height}, $described, mask ${mask_flags:-none}"
if [ "$manifest_bands" != "$band_count" ]; then
  note "the manifest says $manifest_bands band(s), but '$name' has $described; converting it as the image says"
fi

case $data_type in
  Byte | Int8) bytes_per_sample=1 ;;
  UInt16 | Int16) bytes_per_sample=2 ;;
  UInt32 | Int32 | Float32) bytes_per_sample=4 ;;
  Float64 | UInt64 | Int64) bytes_per_sample=8 ;;
  *) die "'$name' holds $data_type (complex) data, which has no preview; only real-valued images are converted" ;;
esac

# --- The COG ---------------------------------------------------------------------------------
# BigTIFF when the COG could pass classic TIFF's 4 GiB: its pixels uncompressed, or the input
# file, over 2 GiB (overviews add up to a third, and LZW can grow data it cannot compress by up
# to half: 2 GiB x 4/3 x 3/2 = 4 GiB). GDAL's own default never picks BigTIFF when compressing.
cog_options=(-of COG -co COMPRESS=LZW)
uncompressed=$((width * height * band_count * bytes_per_sample))
input_size=$(stat -c %s -- "$infile")
if [ "$uncompressed" -gt "$BIGTIFF_ABOVE" ] || [ "$input_size" -gt "$BIGTIFF_ABOVE" ]; then
  cog_options+=(-co BIGTIFF=YES)
  echo "writing a BigTIFF COG: $uncompressed bytes uncompressed, $input_size bytes in"
fi
echo "converting $name to a COG (LZW)"
run_gdal "gdal_translate could not convert '$name' to a COG" gdal_translate -q "${cog_options[@]}" "$src" "$cog"

if ! problems=$(check_cog "$cog"); then
  die "the COG written for '$name' is not a valid COG: $(join_lines <<<"$problems")"
fi
tiff_header "$cog"
if [[ " ${cog_options[*]} " == *" BIGTIFF=YES "* ]] && [ "$bigtiff" != yes ]; then
  die "the COG written for '$name' is not a BigTIFF although it may pass 4 GiB"
fi
read_info "$cog"
if [ "$(value_of bands.0.noDataValue)" != "$nodata" ]; then
  die "the COG written for '$name' has nodata '$(value_of bands.0.noDataValue)', not '$nodata' as the input"
fi
if [[ " $mask_flags " == *" PER_DATASET "* ]] && [[ " $(band1_mask_flags) " != *" PER_DATASET "* ]]; then
  die "the COG written for '$name' lost the input's mask"
fi
echo "checked: $name is a valid COG ($(count_lines '^bands[.]0[.]overviews[.][0-9]+[.]size[.]0=') overview level(s))"

# --- The preview -----------------------------------------------------------------------------
# Which bands: a palette is expanded to colour; red, green and blue are taken by their colour
# interpretation wherever they are; otherwise the first three bands that are not alpha are
# taken as red, green, blue, or, with fewer than three, the first one as grey. (GDAL reads CMYK
# TIFFs as RGBA; the colour models refused below reach it only in unusual files.)
palette='' red='' green='' blue='' others=()
for ((b = 1; b <= band_count; b++)); do
  case ${interps[b - 1]} in
    Palette) [ -n "$palette" ] || palette=$b ;;
    Red) [ -n "$red" ] || red=$b ;;
    Green) [ -n "$green" ] || green=$b ;;
    Blue) [ -n "$blue" ] || blue=$b ;;
    Alpha) ;;
    Cyan | Magenta | Yellow | Black | YCbCr_* | Hue | Saturation | Lightness)
      die "'$name' is in the ${interps[b - 1]} colour model (bands ${interps[*]}); only grey, palette and RGB images are converted"
      ;;
  esac
  case ${interps[b - 1]} in Alpha) ;; *) others+=("$b") ;; esac
done
[ "${#others[@]}" -ge 1 ] || others=(1) # only alpha bands: the first one, as grey
band_args=()
if [ -n "$palette" ]; then
  band_args=(-b "$palette" -expand rgb)
  preview="palette of band $palette expanded to RGB"
elif [ -n "$red" ] && [ -n "$green" ] && [ -n "$blue" ]; then
  band_args=(-b "$red" -b "$green" -b "$blue")
  preview="RGB from bands $red, $green, $blue (their colour interpretation)"
elif [ "${#others[@]}" -ge 3 ]; then
  band_args=(-b "${others[0]}" -b "${others[1]}" -b "${others[2]}")
  preview="RGB from bands ${others[0]}, ${others[1]}, ${others[2]} (no red/green/blue interpretation: by position)"
else
  band_args=(-b "${others[0]}")
  preview="grey from band ${others[0]}"
fi

# The bands in a VRT where masked pixels (nodata, alpha 0, outside the mask) read as 0 for 8-bit
# and palette images, as NaN for the others (those get stretched below, NaN staying out of it).
# GDAL's "UseMaskBand" source option, which gdal_translate cannot ask for, is added to the VRT
# when the image has anything to mask (nodata, alpha or a mask).
case $data_type in
  Byte) masked_type=(-ot Byte -a_nodata 0) ;;
  Float64 | Int64 | UInt64) masked_type=(-ot Float64 -a_nodata nan) ;;
  *) masked_type=(-ot Float32 -a_nodata nan) ;;
esac
[ -z "$palette" ] || masked_type=(-ot Byte -a_nodata 0)
masked="$work/masked.vrt"
run_gdal "could not read the bands of '$name' for its preview" \
  gdal_translate -q -of VRT "${band_args[@]}" "${masked_type[@]}" "$cog" "$masked"
preview_bands=$(awk '/<VRTRasterBand/ { n++ } END { print n + 0 }' "$masked")
if [ "$mask_flags" != ALL_VALID ]; then
  sed -i -e 's|<SimpleSource>|<ComplexSource>|; s|</SimpleSource>|</ComplexSource>|' \
    -e 's|<ComplexSource>|<ComplexSource><UseMaskBand>true</UseMaskBand>|' "$masked"
  [ "$(awk '/<UseMaskBand>true<\/UseMaskBand>/ { n++ } END { print n + 0 }' "$masked")" = "$preview_bands" ] ||
    die "could not set up the nodata mask of the preview of '$name' (unexpected VRT from gdal_translate)"
fi

# Values: 8-bit and palette images as they are; other data stretched per band, from the
# STRETCH_LOW to the STRETCH_HIGH percentile of the band's valid pixels onto 0-255. Masked pixels
# are black. The percentiles come from GDAL's 256-bucket histogram (gdalinfo -hist, which leaves
# out NaN) of a sample of the masked bands at most SAMPLE_SIZE pixels wide and high: GDAL 3.6
# computes a VRT's histogram from its source, mask or not, so it cannot be asked of $masked.
scale_args=()
if [ -z "$palette" ] && [ "$data_type" != Byte ]; then
  sample="$work/sample.tif"
  if [ "$width" -ge "$height" ]; then sample_size=(-outsize "$((width < SAMPLE_SIZE ? width : SAMPLE_SIZE))" 0)
  else sample_size=(-outsize 0 "$((height < SAMPLE_SIZE ? height : SAMPLE_SIZE))"); fi
  run_gdal "could not sample the pixels of '$name' for its preview" \
    gdal_translate -q -of GTiff -ot Float32 "${sample_size[@]}" "$masked" "$sample"
  read_info "$sample" -stats -hist
  for ((b = 0; b < preview_bands; b++)); do
    range=$(awk -F= -v band="bands.$b." -v low="$STRETCH_LOW" -v high="$STRETCH_HIGH" '
      index($1, band) != 1 { next }
      { key = substr($1, length(band) + 1) }
      key == "histogram.min" { lo = $2 } key == "histogram.max" { hi = $2 }
      key == "minimum" { min = $2 } key == "maximum" { max = $2 }
      key ~ /^histogram\.buckets\./ { bucket[n++] = $2; total += $2 }
      function percentile(p,   want, seen, i) {
        want = total * p / 100
        for (i = 0; i < n; i++) {
          if (seen + bucket[i] >= want && bucket[i] > 0)
            return lo + (i + (want - seen) / bucket[i]) * (hi - lo) / n
          seen += bucket[i]
        }
        return hi
      }
      END {
        if (total > 0) printf "%.10g %.10g\n", percentile(low), percentile(high)
        else if (min != "") printf "%.10g %.10g\n", min - 1, max + 1   # one value: mid-grey
        else print "none"                                               # no valid pixel: black
      }' <<<"$info")
    if [ "$range" = none ]; then
      scale_args+=("-scale_$((b + 1))" 0 1 0 0)
    else
      read -r low high <<<"$range"
      if awk -v l="$low" -v h="$high" 'BEGIN { exit !(h <= l) }'; then high=$(awk -v l="$low" 'BEGIN { printf "%.10g", l + 1 }'); fi
      scale_args+=("-scale_$((b + 1))" "$low" "$high" 0 255)
    fi
  done
  preview="$preview, stretched ${STRETCH_LOW}-${STRETCH_HIGH}% (${scale_args[*]})"
fi

# Full size, as the Python tool's previews, unless over JPEG's limit: then as large as it allows.
size_args=()
if [ "$width" -gt "$JPEG_MAX_SIZE" ] || [ "$height" -gt "$JPEG_MAX_SIZE" ]; then
  if [ "$width" -ge "$height" ]; then size_args=(-outsize "$JPEG_MAX_SIZE" 0); else size_args=(-outsize 0 "$JPEG_MAX_SIZE"); fi
  preview="$preview, scaled down to fit ${JPEG_MAX_SIZE} pixels"
fi
echo "writing preview $stem.jpg (quality $JPEG_QUALITY): $preview"
run_gdal "gdal_translate could not write the preview of '$name'" \
  gdal_translate -q -of JPEG -co "QUALITY=$JPEG_QUALITY" -ot Byte "${scale_args[@]}" "${size_args[@]}" \
  -a_nodata 0 "$masked" "$jpeg"
read_info "$jpeg"
jpeg_bands=$(count_lines '^bands[.][0-9]+[.]band=')
[ "$(value_of bands.0.type)" = Byte ] && { [ "$jpeg_bands" = 1 ] || [ "$jpeg_bands" = 3 ]; } ||
  die "the preview of '$name' came out as $jpeg_bands band(s) of $(value_of bands.0.type), not 1 or 3 of Byte"

# --- Done: the outputs take their places only now, the JPEG first, the COG over the input. ----
mv -fT -- "$jpeg" "$stem.jpg"
if ! mv -fT -- "$cog" "$infile"; then
  rm -f -- "$stem.jpg"
  die "could not put the COG in place of '$name'"
fi
echo "done: $infile and $stem.jpg"
