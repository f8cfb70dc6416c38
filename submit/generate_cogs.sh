#!/bin/bash
# cog-pipeline node executable: converts one GeoTIFF into a Cloud Optimized GeoTIFF that keeps
# the input's name, plus an 8-bit JPEG preview <stem>.jpg, in the job's scratch directory.
#
#   generate_cogs.sh INFILE BANDS      convert INFILE (BANDS: the manifest's band count)
#   generate_cogs.sh --check-cog FILE  only check that FILE is a valid COG, as the conversion does
#
# The image decides, not the manifest: band count, data type, colour interpretation, nodata and
# alpha/mask are read from the image (its TIFF tags when it is plain 8-bit, else gdalinfo -json).
# A manifest band count that differs is reported on stderr and otherwise ignored. The rules are
# in README.md, "Previews and COGs".
#
# Any failure exits non-zero with the reason as the last line on stderr (GDAL's own "ERROR n:"
# line, when GDAL failed, is kept as GDAL wrote it: the post step quotes it). On failure nothing
# is left behind: INFILE is untouched and no JPEG is written, so nothing stale is transferred.
# Needs bash, coreutils, awk, sed and GDAL's command-line tools (no Python, no jq).
set -euo pipefail

# No GDAL side files (.aux.xml): only the COG and the JPEG may be left in the scratch directory.
export GDAL_PAM_ENABLED=NO
# GDAL's block cache is 5% of the machine's memory by default, whatever the job asked for
# (request_memory): on a large execute machine the COG and the preview, converted side by side,
# could outgrow it. 128 MB each is as fast on county-sized images, and keeps the two under
# 500 MB together on a 5120x4480 16-bit RGBN image (bench/conversion.ts, README "Performance").
export GDAL_CACHEMAX=128

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

# run_gdal REASON COMMAND...: runs a GDAL command with its messages set aside, then reports it.
# When it fails, its messages go to stderr as GDAL wrote them, followed by REASON, and the script
# stops. When it succeeds, its warnings go to stderr marked "gdal said:", so that post never takes
# one of them for the reason of a later failure.
run_gdal() {
  local reason=$1 log="$work/gdal.$BASHPID.log"
  shift
  if "$@" 2>"$log"; then
    [ ! -s "$log" ] || sed 's/^/generate_cogs.sh: gdal said: /' "$log" >&2
    return 0
  fi
  cat "$log" >&2
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

# read_info FILE [gdalinfo options]: sets $info to the flattened gdalinfo -json of FILE.
read_info() {
  local file=$1
  shift
  info=$(run_gdal "GDAL cannot read '${file#./}' as an image" gdalinfo -json "$@" "$file" | flatten_json) || exit 1
}

# ---------------------------------------------------------------------------------------------
# The TIFF structure, read from the file's bytes (one awk, with od for the bytes it needs).
# ---------------------------------------------------------------------------------------------

# tiff_scan FILE: prints the structure of a TIFF, one line per item:
#   tiff ENDIAN BIGTIFF                   little|big, yes|no
#   ghost SIZE TEXT                       GDAL's structural metadata after the header, if any
#   image OFFSET KIND WIDTH HEIGHT TILED FIRST_BLOCK COMPRESSION SAMPLES BITS FORMAT PHOTOMETRIC EXTRA NODATA INTERP
#                                         one line per IFD, in the file's order; KIND image, overview or
#                                         mask (NewSubfileType); BITS and FORMAT "mixed" when bands differ;
#                                         PHOTOMETRIC -1 when absent; EXTRA the ExtraSamples as 0,2 or -;
#                                         NODATA yes when a GDAL_NODATA tag is there; INTERP yes when
#                                         GDAL_METADATA sets a band's colour interpretation (first IFD only)
#   error REASON                          the file cannot be read as a TIFF, or holds no image; nothing
#                                         follows
# Bytes are read in 4 KiB pieces where the structure points, so IFDs anywhere in a large file
# cost one od each, never a read of the whole file.
tiff_scan() {
  TIFF_FILE=$1 awk '
    function fail(reason) { print "error " reason; exit }
    function byte(at,   piece, cmd, line, n, i, f, pos) {
      if (!(at in b)) {
        piece = int(at / 4096)
        if (piece in loaded) fail("the file ends inside its TIFF structure")
        loaded[piece] = 1
        cmd = "od -An -v -tu1 -j " piece * 4096 " -N 4096 -- \"$TIFF_FILE\""
        pos = piece * 4096
        while ((cmd | getline line) > 0) { n = split(line, f, " "); for (i = 1; i <= n; i++) b[pos++] = f[i] + 0 }
        close(cmd)
        if (!(at in b)) fail("the file ends inside its TIFF structure")
      }
      return b[at]
    }
    function num(at, len,   v, i) {
      v = 0
      for (i = 0; i < len; i++) v = v * 256 + byte(little ? at + len - 1 - i : at + i)
      return v
    }
    function text(at, len,   s, i, c) {
      s = ""
      for (i = 0; i < len; i++) { c = byte(at + i); if (c == 0) break; s = s sprintf("%c", c) }
      return s
    }
    function type_size(type) {
      if (type == 3 || type == 8) return 2
      if (type == 4 || type == 9 || type == 11 || type == 13) return 4
      if (type == 5 || type == 10 || type == 12 || type >= 16) return 8
      return 1
    }
    # value(TAG, I): the I-th value of TAG in the IFD read last.
    function value(tag, i) { return num(where[tag] + i * size[tag], size[tag]) }
    # same(TAG, DEFAULT): the value of TAG when all its values agree, "mixed" otherwise.
    function same(tag, default_value,   v, i) {
      if (!(tag in count)) return default_value
      v = value(tag, 0)
      for (i = 1; i < count[tag]; i++) if (value(tag, i) != v) return "mixed"
      return v
    }
    BEGIN {
      if (byte(0) == 73 && byte(1) == 73) little = 1
      else if (byte(0) == 77 && byte(1) == 77) little = 0
      else fail("not a TIFF file")
      magic = num(2, 2)
      if (magic == 42) { field = 4; count_bytes = 2; entry = 12; ifd = num(4, 4); header = 8 }
      else if (magic == 43) { field = 8; count_bytes = 8; entry = 20; ifd = num(8, 8); header = 16 }
      else fail("not a TIFF file")
      print "tiff " (little ? "little" : "big") " " (magic == 43 ? "yes" : "no")
      if (text(header, 30) == "GDAL_STRUCTURAL_METADATA_SIZE=") {
        ghost_size = text(header + 30, 6) + 0
        ghost = text(header + 43, ghost_size); gsub(/\n/, " ", ghost)
        printf "ghost %d %s\n", ghost_size, ghost
      }
      for (seen = 0; ifd != 0; seen++) {
        if (seen == 1000) fail("more than 1000 images: its IFD chain loops")
        split("", count); split("", where); split("", size)
        entries = num(ifd, count_bytes)
        for (e = 0; e < entries; e++) {
          at = ifd + count_bytes + e * entry
          tag = num(at, 2); size[tag] = type_size(num(at + 2, 2)); count[tag] = num(at + 4, field)
          where[tag] = (count[tag] * size[tag] > field) ? num(at + 4 + field, field) : at + 4 + field
        }
        subfile = (254 in count) ? value(254, 0) : 0
        kind = (int(subfile / 4) % 2) ? "mask" : (subfile % 2) ? "overview" : "image"
        blocks = (324 in count) ? 324 : 273
        extra = "-"
        if (338 in count) { extra = value(338, 0); for (i = 1; i < count[338]; i++) extra = extra "," value(338, i) }
        interp = "no"
        if (seen == 0 && (42112 in count) && index(text(where[42112], count[42112]), "role=\"colorinterp\"")) interp = "yes"
        printf "image %.0f %s %.0f %.0f %s %.0f %.0f %.0f %s %s %.0f %s %s %s\n", ifd, kind, value(256, 0), value(257, 0),
          (322 in count) ? "yes" : "no", (blocks in count) ? value(blocks, 0) : 0, (259 in count) ? value(259, 0) : 1,
          (277 in count) ? value(277, 0) : 1, same(258, 1), same(339, 1), (262 in count) ? value(262, 0) : -1,
          extra, (42113 in count) ? "yes" : "no", interp
        ifd = num(ifd + count_bytes + entries * entry, field)
      }
      if (seen == 0) fail("it holds no image (its first IFD offset is 0)")
    }'
}

# ---------------------------------------------------------------------------------------------
# The COG check: the rules of GDAL's validate_cloud_optimized_geotiff.py, from the file's bytes.
# ---------------------------------------------------------------------------------------------

# check_cog FILE: returns 1 if FILE is not a valid COG, with the reasons in $cog_problems; sets
# $structure to FILE's tiff_scan either way. Checked, as GDAL's validator does: a TIFF, no
# external .ovr, GDAL's COG header (what makes GDAL report LAYOUT=COG) not marked as edited since,
# the first IFD right after that header, images over 512 pixels tiled and with overviews,
# overviews smaller and smaller, IFDs before the pixel data, and the pixel data of the smallest
# overview first and of the full image last. Also LZW compression, which this pipeline asks for.
# (Not checked: the validator's optional per-block leader/trailer bytes.) Plain bash after the
# scan: this runs on every conversion, and each extra process costs milliseconds.
check_cog() {
  local file=$1 line bigtiff=no ghost='' ghost_size=0 expected_ifd
  local -a ifd=() kind=() width=() height=() tiled=() data=() compression=()
  cog_problems=()
  structure=$(tiff_scan "$file")
  while read -r line; do
    case $line in
      error*) cog_problems+=("it is not a readable TIFF file: ${line#error }"); return 1 ;;
      tiff*) read -r _ _ bigtiff <<<"$line" ;;
      ghost*) read -r _ ghost_size ghost <<<"$line" ;;
      image*)
        local i=${#ifd[@]}
        read -r _ "ifd[i]" "kind[i]" "width[i]" "height[i]" "tiled[i]" "data[i]" "compression[i]" _ <<<"$line"
        ;;
    esac
  done <<<"$structure"
  [ ! -e "$file.ovr" ] || cog_problems+=("its overviews are in an external file (${file#./}.ovr)")
  local name
  case ${compression[0]} in
    1) name=none ;; 5) name=LZW ;; 7) name=JPEG ;; 8 | 32946) name=DEFLATE ;; 32773) name=PACKBITS ;;
    34887) name=LERC ;; 34925) name=LZMA ;; 50000) name=ZSTD ;; 50001) name=WEBP ;; *) name="code ${compression[0]}" ;;
  esac
  [ "$name" = LZW ] || cog_problems+=("compression is $name, not LZW")
  expected_ifd=8
  [ "$bigtiff" = no ] || expected_ifd=16
  if [ -n "$ghost" ]; then
    expected_ifd=$((expected_ifd + 43 + 10#$ghost_size))
    expected_ifd=$((expected_ifd + expected_ifd % 2))
    [[ $ghost != *KNOWN_INCOMPATIBLE_EDITION=YES* ]] || cog_problems+=("KNOWN_INCOMPATIBLE_EDITION=YES is declared in the file")
    [[ $ghost == *LAYOUT=IFDS_BEFORE_DATA* ]] || cog_problems+=("its GDAL header does not declare LAYOUT=IFDS_BEFORE_DATA")
  else
    cog_problems+=("it has no COG header, so GDAL does not report LAYOUT=COG")
  fi
  [ "${ifd[0]}" = "$expected_ifd" ] || cog_problems+=("the first IFD is at byte ${ifd[0]}, not $expected_ifd right after the header")
  [ "${kind[0]}" = image ] || cog_problems+=("the first image is not the full-resolution image")

  # The full-resolution image and its overviews (masks left aside), largest first (a stable
  # insertion sort: there are a few dozen levels at most).
  local -a levels=()
  local i j
  for i in "${!ifd[@]}"; do
    [ "${kind[i]}" != mask ] || continue
    for ((j = ${#levels[@]}; j > 0; j--)); do
      local above=${levels[j - 1]}
      if ((width[i] > width[above] || (width[i] == width[above] && height[i] > height[above]))); then
        levels[j]=$above
      else
        break
      fi
    done
    levels[j]=$i
  done
  local top=${levels[0]} last=$((${#levels[@]} - 1))
  if ((width[top] > 512 || height[top] > 512)); then
    ((last >= 1)) || cog_problems+=("it is ${width[top]}x${height[top]} pixels but has no overviews")
    for i in "${levels[@]}"; do
      if [ "${tiled[i]}" = no ]; then cog_problems+=("it is ${width[top]}x${height[top]} pixels but not tiled"); break; fi
    done
  fi
  # Going down the levels: each smaller, its IFD later, its pixel data earlier in the file.
  for ((j = 1; j <= last; j++)); do
    local at=${levels[j]} up=${levels[j - 1]}
    name="overview $((j - 1))"
    ((width[at] < width[up] || height[at] < height[up])) || cog_problems+=("$name is not smaller than the level above it")
    ((ifd[at] > ifd[up])) || cog_problems+=("the IFD of $name comes before the one of the level above it")
    ((data[at] < data[up])) || cog_problems+=("the pixel data of $name come after those of the level above it")
  done
  local last_ifd=0
  for i in "${!ifd[@]}"; do ((ifd[i] <= last_ifd)) || last_ifd=${ifd[i]}; done
  ((data[levels[last]] > last_ifd)) || cog_problems+=("pixel data start before the last IFD (the IFDs are not all at the start)")
  [ "${#cog_problems[@]}" -eq 0 ]
}

# relay FILE: FILE's lines on stdout (a builtin loop: cat would cost a process per conversion).
relay() {
  local line
  while IFS= read -r line || [ -n "$line" ]; do printf '%s\n' "$line"; done <"$1"
}

# joined ITEM...: the items as one line, separated by "; ".
joined() {
  local IFS=$'\x1f'
  local all="$*"
  printf '%s' "${all//$'\x1f'/; }"
}

# ---------------------------------------------------------------------------------------------
# --check-cog FILE
# ---------------------------------------------------------------------------------------------
if [ "${1-}" = --check-cog ]; then
  [ "$#" -eq 2 ] || { echo "usage: generate_cogs.sh --check-cog FILE" >&2; exit 2; }
  [ -f "$2" ] || die "'$2' is not here"
  if check_cog "$(gdal_path "$2")"; then
    echo "$2: a valid COG"
    exit 0
  fi
  die "'$2' is not a valid COG: $(joined "${cog_problems[@]}")"
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
work=$(mktemp -d "${src%/*}/.generate_cogs.XXXXXX")
preview_pid=''
trap '[ -z "$preview_pid" ] || wait "$preview_pid" || true; rm -rf -- "$work"' EXIT
cog="$work/cog.tif"
jpeg="$work/preview.jpg"

# --- What the image is -----------------------------------------------------------------------
# describe_from_tags: describes a plain image from its TIFF tags (no GDAL start-up, which costs
# as much as a small image's conversion): one full-resolution 8-bit unsigned image, grey or RGB
# with any extra bands unspecified, no nodata, no mask, no alpha, no palette, no colour
# interpretation of GDAL's own. Returns 1 for anything else, which gdalinfo then describes.
# What it sets is what gdalinfo would report for such an image (test/generate_cogs.test.ts
# compares the two on every fixture).
describe_from_tags() {
  local line first='' kind samples bits format photometric extra has_nodata has_interp
  [ ! -e "$infile.msk" ] || return 1 # GDAL would read this external mask
  structure=$(tiff_scan "$src")
  while read -r line; do
    case $line in
      error*) return 1 ;;
      image*)
        if [ -z "$first" ]; then first=$line; else
          read -r _ _ kind _ <<<"$line"
          [ "$kind" = overview ] || return 1 # a mask, or a second page
        fi
        ;;
    esac
  done <<<"$structure"
  read -r _ _ kind width height _ _ _ samples bits format photometric extra has_nodata has_interp <<<"$first"
  [ "$kind" = image ] && [ "$bits" = 8 ] && [ "$format" = 1 ] && [ "$has_nodata" = no ] && [ "$has_interp" = no ] || return 1
  case $photometric in
    1) interps=(Gray) ;;
    2) [ "$samples" -ge 3 ] || return 1; interps=(Red Green Blue) ;;
    *) return 1 ;;
  esac
  # Extra samples: 0 is unspecified data (GDAL: Undefined); alpha (1, 2) has a mask: not plain.
  local extras=$((samples - ${#interps[@]}))
  [ "$extra" != - ] || extra=''
  [ "${extra//[0,]/}" = '' ] || return 1
  for ((; extras > 0; extras--)); do interps+=(Undefined); done
  band_count=$samples data_type=Byte nodata='' mask_flags=ALL_VALID
}

# describe_with_gdalinfo: anything else, as GDAL reads it.
describe_with_gdalinfo() {
  read_info "$src"
  local driver
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
  # gdalinfo names mask flags only when there is a mask or alpha; otherwise GDAL's flags are NODATA
  # when there is a nodata value and ALL_VALID when not.
  mask_flags=$(band1_mask_flags)
  [ -n "$mask_flags" ] || mask_flags=$([ -n "$nodata" ] && echo NODATA || echo ALL_VALID)
  interps=()
  local b
  for ((b = 0; b < band_count; b++)); do interps+=("$(value_of "bands.$b.colorInterpretation")"); done
}

interps=()
describe_from_tags || describe_with_gdalinfo
described="$band_count band(s) of $data_type (${interps[*]})${nodata:+, nodata $nodata}"
echo "$name: ${width}x${height}, $described, mask $mask_flags"
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

# --- Which bands the preview shows -----------------------------------------------------------
# A palette is expanded to colour; red, green and blue are taken by their colour interpretation
# wherever they are; otherwise the first three bands that are not alpha are taken as red, green,
# blue, or, with fewer than three, the first one as grey. (GDAL reads CMYK TIFFs as RGBA; the
# colour models refused below reach it only in unusual files.)
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

# Full size, as the Python tool's previews, unless over JPEG's limit: then as large as it allows.
size_args=()
if [ "$width" -gt "$JPEG_MAX_SIZE" ] || [ "$height" -gt "$JPEG_MAX_SIZE" ]; then
  if [ "$width" -ge "$height" ]; then size_args=(-outsize "$JPEG_MAX_SIZE" 0); else size_args=(-outsize 0 "$JPEG_MAX_SIZE"); fi
  preview="$preview, scaled down to fit ${JPEG_MAX_SIZE} pixels"
fi

# --- The preview -----------------------------------------------------------------------------
# make_preview: writes $jpeg from the input (the same pixels, mask and palette as the COG: LZW is
# lossless). It runs beside the COG's conversion, each a GDAL process of its own, so a conversion
# takes about as long as its longer half.
make_preview() {
  if [ "$data_type" = Byte ] && [ -z "$palette" ] && [ "$mask_flags" = ALL_VALID ]; then
    # 8-bit, nothing masked: shown as it is, as the Python tool's previews.
    echo "writing preview $stem.jpg (quality $JPEG_QUALITY): $preview"
    run_gdal "gdal_translate could not write the preview of '$name'" \
      gdal_translate -q -of JPEG -co "QUALITY=$JPEG_QUALITY" "${band_args[@]}" "${size_args[@]}" "$src" "$jpeg"
  else
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
      gdal_translate -q -of VRT "${band_args[@]}" "${masked_type[@]}" "$src" "$masked"
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

    echo "writing preview $stem.jpg (quality $JPEG_QUALITY): $preview"
    run_gdal "gdal_translate could not write the preview of '$name'" \
      gdal_translate -q -of JPEG -co "QUALITY=$JPEG_QUALITY" -ot Byte "${scale_args[@]}" "${size_args[@]}" \
      -a_nodata 0 "$masked" "$jpeg"
    read_info "$jpeg"
    jpeg_bands=$(count_lines '^bands[.][0-9]+[.]band=')
    [ "$(value_of bands.0.type)" = Byte ] && { [ "$jpeg_bands" = 1 ] || [ "$jpeg_bands" = 3 ]; } ||
      die "the preview of '$name' came out as $jpeg_bands band(s) of $(value_of bands.0.type), not 1 or 3 of Byte"
  fi
}

# The preview's messages are held back until the COG is done, so that the log reads in order and
# its last line says why, whichever half failed.
make_preview >"$work/preview.out" 2>"$work/preview.err" &
preview_pid=$!

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

if ! check_cog "$cog"; then
  die "the COG written for '$name' is not a valid COG: $(joined "${cog_problems[@]}")"
fi
cog_bigtiff=no cog_nodata='' overviews=0
while read -r line; do
  case $line in
    "tiff "*) read -r _ _ cog_bigtiff <<<"$line" ;;
    "image "*)
      read -r _ _ kind _ _ _ _ _ _ _ _ _ _ has_nodata _ <<<"$line"
      [ -n "$cog_nodata" ] || cog_nodata=$has_nodata
      [ "$kind" != overview ] || overviews=$((overviews + 1))
      ;;
  esac
done <<<"$structure"
if [[ " ${cog_options[*]} " == *" BIGTIFF=YES "* ]] && [ "$cog_bigtiff" != yes ]; then
  die "the COG written for '$name' is not a BigTIFF although it may pass 4 GiB"
fi
if [ "$mask_flags" = ALL_VALID ]; then
  # Nothing to carry over but the pixels: the COG must not have gained a nodata value.
  [ "$cog_nodata" = no ] || die "the COG written for '$name' has a nodata value, which the input has not"
else
  read_info "$cog"
  if [ "$(value_of bands.0.noDataValue)" != "$nodata" ]; then
    die "the COG written for '$name' has nodata '$(value_of bands.0.noDataValue)', not '$nodata' as the input"
  fi
  if [[ " $mask_flags " == *" PER_DATASET "* ]] && [[ " $(band1_mask_flags) " != *" PER_DATASET "* ]]; then
    die "the COG written for '$name' lost the input's mask"
  fi
fi
echo "checked: $name is a valid COG ($overviews overview level(s))"

preview_status=0
wait "$preview_pid" || preview_status=$?
preview_pid=''
relay "$work/preview.out"
relay "$work/preview.err" >&2
[ "$preview_status" -eq 0 ] || exit 1

# --- Done: the outputs take their places only now, the JPEG first, the COG over the input. ----
mv -fT -- "$jpeg" "$stem.jpg"
if ! mv -fT -- "$cog" "$infile"; then
  rm -f -- "$stem.jpg"
  die "could not put the COG in place of '$name'"
fi
echo "done: $infile and $stem.jpg"
